"""Clients of the company mailbox (the upstream), with the shared account.

:mod:`.smtp` relays (its wire codec in :mod:`.smtpwire`), :mod:`.imap` logs in (``login``, shared
with the inbound sync) and APPENDs (Sent copies, notices) over :mod:`.imapclient` (with
:mod:`.imapresponse` and :mod:`.imapwire`, the sans-I/O response parser and command writer);
:mod:`.source` is the message they stream from its spool file and the failures they raise,
:mod:`.budget` the connection budget they share.
"""
