"""Function rewriters: replace a function only while a :class:`RewriterContext` is open."""
from .context import RewriteCall, RewriterContext
from .patching import RewriterError
from .registry import FUNCTION_REWRITER, FunctionRewriter, RewriteRecord

__all__ = ['FUNCTION_REWRITER', 'FunctionRewriter', 'RewriteCall', 'RewriteRecord',
           'RewriterContext', 'RewriterError']
