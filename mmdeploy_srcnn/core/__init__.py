"""The rewriter core: register function, module and symbolic rewrites; apply them in a context.

The names match MMDeploy 1.x's ``mmdeploy.core`` (plus ``Backend``, ``IR`` and the checkers), so
an MMDeploy rewriter ports by changing its import lines.
"""
from .mark import mark
from .rewriters import (FUNCTION_REWRITER, IR, MODULE_REWRITER, REWRITER_MANAGER, SYMBOLIC_REWRITER,
                        Backend, BackendChecker, Checker, FunctionRewriter, IRChecker,
                        LibVersionChecker, MissingTargetWarning, ModuleRewriter, RewriteCall,
                        RewriteEnv, RewriterContext, RewriteRecord, RewriterError, RewriterManager,
                        SymbolicRewriter, collect_env, patch_model)

__all__ = ['FUNCTION_REWRITER', 'MODULE_REWRITER', 'SYMBOLIC_REWRITER', 'REWRITER_MANAGER',
           'Backend', 'BackendChecker', 'Checker', 'FunctionRewriter', 'IR', 'IRChecker',
           'LibVersionChecker', 'MissingTargetWarning', 'ModuleRewriter', 'RewriteCall',
           'RewriteEnv', 'RewriteRecord', 'RewriterContext', 'RewriterError', 'RewriterManager',
           'SymbolicRewriter', 'collect_env', 'mark', 'patch_model']
