"""Test module that is not an extension (no load_finchan_ext)."""
