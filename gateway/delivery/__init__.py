"""Delivery: from the spool to the company mailbox, in a process of its own.

:mod:`.process` starts and supervises that process, :mod:`.relay` sends with the shared account,
:mod:`.sentcopy` files the tagged copy in the upstream Sent folder, :mod:`.notices` builds the
bounces and notices the operator finds in the INBOX.
"""
