"""The project's mmengine logger, safe to ask for more than once with different levels."""
import logging
import sys

from mmengine.logging import MMLogger

LOGGER_NAME = 'mmdeploy_srcnn'


def get_logger(log_level: str = 'INFO') -> MMLogger:
    """The shared ``MMLogger``, set to ``log_level`` (it and its handlers)."""
    if not MMLogger.check_instance_created(LOGGER_NAME):
        return MMLogger.get_instance(LOGGER_NAME, log_level=log_level)
    logger = MMLogger.get_instance(LOGGER_NAME)
    logger.setLevel(log_level)
    for handler in logger.handlers:
        handler.setLevel(log_level)
        if type(handler) is logging.StreamHandler:
            # Write to the current stdout, not the one of the first call (it may be closed,
            # e.g. replaced by a test's capture).
            handler.stream = sys.stdout  # not setStream(): it flushes the old stream
    return logger
