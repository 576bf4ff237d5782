"""What the atomistic systems (argon, water, GeTe, aluminium) share.

metatrain datasets from reference trajectories (:mod:`.dataset`), FlashMD
training and export with metatrain (:mod:`.training`), the exported models as
long-step maps (:mod:`.model`) and their validation errors (:mod:`.model_errors`).
"""
