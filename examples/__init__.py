"""A user package outside ``mmdeploy_srcnn``: models deployed through ``custom_imports``.

Nothing here is imported by the ``mmdeploy_srcnn`` package; a deploy config lists the module in
``custom_imports`` and loading the config registers the model.
"""
