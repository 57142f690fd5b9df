"""Qt (qtpy) + pyqtgraph user interface. The only package that imports Qt widgets."""
