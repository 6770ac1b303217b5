"""Rewriters: replace functions, modules and ONNX symbolics only while a context is open."""
from .calls import RewriteCall
from .checkers import BackendChecker, Checker, IRChecker, LibVersionChecker, RewriteEnv, collect_env
from .constants import IR, Backend
from .context import (FUNCTION_REWRITER, MODULE_REWRITER, REWRITER_MANAGER, SYMBOLIC_REWRITER,
                      RewriterContext, RewriterManager, patch_model)
from .function_rewriter import FunctionRewriter
from .module_rewriter import ModuleRewriter
from .patching import MissingTargetWarning, RewriterError
from .records import RewriteRecord
from .symbolic_rewriter import SymbolicRewriter

__all__ = ['FUNCTION_REWRITER', 'MODULE_REWRITER', 'SYMBOLIC_REWRITER', 'REWRITER_MANAGER',
           'Backend', 'BackendChecker', 'Checker', 'FunctionRewriter', 'IR', 'IRChecker',
           'LibVersionChecker', 'MissingTargetWarning', 'ModuleRewriter', 'RewriteCall',
           'RewriteEnv', 'RewriteRecord', 'RewriterContext', 'RewriterError', 'RewriterManager',
           'SymbolicRewriter', 'collect_env', 'patch_model']
