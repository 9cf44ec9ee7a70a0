"""Hello: a small Bilten plugin that lets visitors leave a greeting for the organiser.

It touches every part of the plugin API once, so that ``docs/plugins.md`` can walk through it and
the kernel's tests can prove the plugin machinery works for a package installed from outside.
"""
