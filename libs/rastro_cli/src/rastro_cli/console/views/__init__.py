"""The console's pages, one module per area; each page is ``async def (visit: Visit) -> Response``."""
