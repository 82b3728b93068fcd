"""The search app: ``SearchService`` (plain Python: queries, indexes, models) and its Gradio page.

``python -m mmssl serve`` (and ``app.py``) start it; everything the page does is a method of
:class:`SearchService`, so it can be scripted and tested without a browser.
"""

from mmssl.app.config import AppConfig, parse_auth
from mmssl.app.search import SearchResult, SearchService, UserError, clean_query
from mmssl.app.serve import launch, serve

__all__ = ["AppConfig", "SearchResult", "SearchService", "UserError", "clean_query", "launch", "parse_auth", "serve"]
