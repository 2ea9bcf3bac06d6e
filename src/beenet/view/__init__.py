"""``beenet view``: interactive HTML pages for predict results and training runs.

Pages are self-contained: the script and styles ship in ``beenet/view/static`` and are inlined
into each page; the data is embedded as compact JSON (typed arrays in base64), so a page works
opened from disk (no ``fetch`` of ``file://``) and from :func:`serve` (127.0.0.1, HTTP ranges).
"""

from beenet.view.results import write_results_view
from beenet.view.run import write_run_view
from beenet.view.server import serve

__all__ = ["write_results_view", "write_run_view", "serve"]
