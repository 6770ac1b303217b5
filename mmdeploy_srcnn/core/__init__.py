"""The function-rewriter core: register rewrites, apply them inside a context."""
from .rewriters import (FUNCTION_REWRITER, FunctionRewriter, RewriteCall, RewriterContext,
                        RewriterError, RewriteRecord)

__all__ = ['FUNCTION_REWRITER', 'FunctionRewriter', 'RewriteCall', 'RewriteRecord',
           'RewriterContext', 'RewriterError']
