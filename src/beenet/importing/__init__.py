"""``beenet import``: your own labelled videos as a BoLD-layout dataset (see :mod:`beenet.importing.build`)."""
