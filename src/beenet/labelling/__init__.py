"""``beenet label``: label the people of your own videos in the browser, for ``beenet import``.

:mod:`~beenet.labelling.page` writes the page (each video with the people pass 1 of ``beenet
predict`` tracked in it, :mod:`beenet.importing.tracks`, cached), :mod:`~beenet.labelling.store`
reads and rewrites the labels file one checked row at a time, :mod:`~beenet.labelling.server`
serves both on 127.0.0.1 (``beenet view``'s server plus the rows' routes).
"""
