"""The inbound sync: keeps the store's copy of the company mailbox current with a small fixed
number of upstream IMAP connections (one IDLE on INBOX, one worker by default), and files each
message for its customer's owner.

:mod:`.service` runs it (the IDLE connection, the worker, ``sync --initial``); :mod:`.upstream`
is its side of the company mailbox (:class:`~.upstream.MailboxConnection`: folders, a folder's
state, new messages, flags and UIDs, IDLE), with the values it returns and the pure reading
behind them in :mod:`.upstreamdata`; :mod:`.folders` says what each folder is for;
:mod:`.reading`, :mod:`.filing` and :mod:`.importer` turn fetched bytes into filed mail in the
store; :mod:`.pool` returns customers nobody writes to to the pool.
"""
