"""Audio analysis of stored calls: the capability that turns a call's recording into turn-taking scores.

The signal processing itself lives in :mod:`convoscope.audio` (pure: samples in, metrics out); this
package is the job around it: which stored calls need analysis, which recording tells the parties apart,
and where the results are kept.
"""
