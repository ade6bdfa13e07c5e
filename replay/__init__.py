"""Record the live wire stream to a file; replay it through a rule set offline.

``recording`` is the file format, ``record`` the recorder, ``replay`` the offline loop,
``report`` / ``compare`` what it prints, ``republish`` the pacing back onto a broker and
``fleet`` a synthetic district to chew on.
"""
