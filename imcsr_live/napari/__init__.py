"""napari plugin (npe2, manifest ``napari.yaml``): open recordings, separate SR images, try it on a synthetic cell.

Installed with the ``napari`` extra (``pip install "imcsr-live[napari]"``). One module per contribution:
``reader`` (recordings as layers), ``widget`` (the "IMC-SR separate" dock), ``separation`` (the widget's work,
without Qt), ``sample`` (synthetic sample data), ``layers`` (how a channel becomes a napari layer).
"""
