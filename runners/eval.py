"""Hydra entry point: the whole chain (cfg.stages: generate, judge, score, summary). Example: python runners/eval.py model=framepack asm=scalar"""

from omiti2v.eval import main

if __name__ == "__main__":
    main()
