"""mailwarden.gateway: the asyncio servers and the clients of the company mailbox.

- :mod:`.submission`: the SMTP server salespeople send to (AUTH, the DATA reader, rules and
  signature applied, the spool commit behind the answer to DATA).
- :mod:`.delivery`: the delivery process: relay from the spool to the upstream, the tagged
  Sent copy, bounces and notices to the operator.
- :mod:`.upstream`: the clients that talk to the company mailbox with the shared account.
- :mod:`.sync`: the inbound sync: the store's copy of the company mailbox, each message filed
  for its customer's owner.
- :mod:`.imap`: what the IMAP server for salespeople serves (ENVELOPE, BODYSTRUCTURE, sections),
  computed once when a message is imported.
- beside them: :mod:`.config` (the TOML file), :mod:`.auth` (logins, shared by every server),
  :mod:`.tls`, :mod:`.logsetup`, :mod:`.headers` (header fields and the gateway's tags),
  :mod:`.dbwriter` (group commit), :mod:`.engines` (rules and signatures from the config),
  :mod:`.clientconfig` (mail-client settings files and autoconfig) and
  :mod:`.server` (``serve``: all of it together).
"""
