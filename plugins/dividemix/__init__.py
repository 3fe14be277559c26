"""DivideMix's internals (not a plugin: registers nothing; ``method_dividemix`` is the entry
point). Public-named so tests import them; nothing outside the method imports underscore names."""
