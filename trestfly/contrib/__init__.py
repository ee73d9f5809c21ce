"""Optional integrations with other libraries, each behind an extra.

Importing :mod:`trestfly` never imports these modules or what they wrap; import them
yourself (``from trestfly.contrib.rich import RichProgress``) after installing the extra
(``pip install 'trestfly[rich]'``).

.. versionadded:: 0.1.0
"""
