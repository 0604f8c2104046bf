"""Helpers shared by several test files (imported as ``support.<module>``, never via conftest).

* :mod:`support.sandboxes`: sandbox sheets, clients, store and request-log views;
* :mod:`support.observers`: the one "stop after N" observer;
* :mod:`support.rawhttp`: scripted raw HTTP servers;
* :mod:`support.faultservers`: fault-injecting servers, run checks, forged workbooks.
"""
