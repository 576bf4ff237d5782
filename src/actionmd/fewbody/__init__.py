"""Few-body gravitational systems (Figs. 1 and 4): N-body physics (:mod:`.nbody`),
MLPs (:mod:`.mlp`), their training (:mod:`.training`), rollouts (:mod:`.rollout`),
metrics (:mod:`.metrics`) and the workflow's steps (:mod:`.steps`).
"""
