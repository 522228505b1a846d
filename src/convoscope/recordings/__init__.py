"""Recordings kept for good: the capability that downloads a vendor's recording link into the blob store.

Vendor links expire, so a call that names its recording only by a link gets a fetch job; the download is
guarded against reaching private networks (:mod:`.egress`) and bounded in size and time.
"""
