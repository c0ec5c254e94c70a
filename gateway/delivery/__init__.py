"""Delivery: from the spool to the company mailbox, in a process of its own.

:mod:`.process` starts and supervises that process, :mod:`.relay` sends with the shared account,
:mod:`.sentcopy` files the tagged copy in the upstream Sent folder, :mod:`.inflight` is what the
two share (the items in flight, how each outcome is recorded), :mod:`.notices` builds the
bounces and notices the operator finds in the INBOX.  The states an item goes through, and
the functions that move it, are the store's (:mod:`mailwarden.store.spool`).
"""
