"""mailwarden.testing: a private, throwaway company mailbox (Dovecot + Postfix on loopback).

Not the gateway: the rig that ``mailwarden demo``, the tests and the benchmarks start as the
upstream.  Installed with the product (as ``mailwarden.testing``) so that ``mailwarden demo``
works from a fresh install; :class:`~mailwarden.testing.localupstream.LocalUpstream` is its
public face.
"""
