"""The inbound sync: the store's copy of the company mailbox, kept current with a few upstream
IMAP connections, each message filed for its customer's owner (see :mod:`.filing`)."""
