#!/usr/bin/python3
"""Real PyTorch checkpoint writers for `make bench` (run with Debian's python3-torch).

    ckpt.py hf DIR STEPS [MODEL_MIB]
        One process saving Hugging Face Trainer-style checkpoints: a tmp directory,
        torch.save of the model, the optimizer (Adam: two moments per parameter) and
        the RNG state, trainer_state.json, fsync of every file, rename into
        checkpoint-<step>, fsync of the parent.
    ckpt.py ranks DIR STEPS [RANKS] [MIB_PER_RANK]
        RANKS processes (default 8) that save MIB_PER_RANK (default 128) each at the
        same moment into step-<N>/ (torch.distributed.checkpoint's layout:
        __<rank>_0.distcp per rank, .metadata by rank 0 last), each file fsynced.

Prints one line per step: the stall in seconds. For `ranks` the stall runs from the
barrier that releases all ranks to the end of the last rank's fsync (the moment the
slowest rank could go back to training), measured on CLOCK_MONOTONIC, which all
processes share.
"""
import json
import multiprocessing as mp
import os
import pickle
import sys
import time

import torch


def fsync_path(path, directory=False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(obj, path):
    torch.save(obj, path)
    fsync_path(path)


def hf(root, steps, model_mib):
    # A model of MODEL_MIB MiB of fp32 parameters in 16 MiB layers, and Adam's state.
    layers = max(1, model_mib // 16)
    model = torch.nn.Sequential(*[torch.nn.Linear(2048, 2048, bias=False) for _ in range(layers)])
    optim = torch.optim.Adam(model.parameters())
    model(torch.randn(1, 2048)).sum().backward()
    optim.step()  # creates exp_avg and exp_avg_sq
    for step in range(1, steps + 1):
        start = time.monotonic()
        tmp = os.path.join(root, "tmp-checkpoint-%d" % step)
        os.mkdir(tmp)
        save(model.state_dict(), os.path.join(tmp, "pytorch_model.bin"))
        save(optim.state_dict(), os.path.join(tmp, "optimizer.pt"))
        save({"python": None, "torch": torch.get_rng_state()}, os.path.join(tmp, "rng_state.pth"))
        with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
            json.dump({"global_step": step, "log_history": []}, f)
            f.flush()
            os.fsync(f.fileno())
        fsync_path(tmp, directory=True)
        os.rename(tmp, os.path.join(root, "checkpoint-%d" % step))
        fsync_path(root, directory=True)
        print("%.4f" % (time.monotonic() - start), flush=True)


def rank_main(rank, root, steps, mib, barrier, starts, ends):
    # 16 MiB tensors, as a model's layers: torch.save writes each with one large write.
    shard = {"t%d" % i: torch.full((4 << 20,), float(rank + i)) for i in range(max(1, mib // 16))}
    for step in range(steps):
        barrier.wait()
        slot = step * (len(ends) // steps) + rank
        starts[slot] = time.monotonic()
        d = os.path.join(root, "step-%d" % step)
        os.makedirs(d, exist_ok=True)
        save(shard, os.path.join(d, "__%d_0.distcp" % rank))
        barrier.wait()  # every shard is down before rank 0 writes the metadata
        if rank == 0:  # pickled, as torch.distributed.checkpoint writes it
            with open(os.path.join(d, ".metadata"), "wb") as f:
                pickle.dump({"step": step, "ranks": len(ends) // steps}, f)
                f.flush()
                os.fsync(f.fileno())
            fsync_path(d, directory=True)
        ends[slot] = time.monotonic()


def ranks(root, steps, nranks, mib):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(nranks)
    starts = ctx.Array("d", steps * nranks, lock=False)
    ends = ctx.Array("d", steps * nranks, lock=False)
    procs = [
        ctx.Process(target=rank_main, args=(r, root, steps, mib, barrier, starts, ends))
        for r in range(nranks)
    ]
    for p in procs:
        p.start()
    # A rank that fails would leave the others waiting at the barrier: end them.
    while any(p.exitcode is None for p in procs):
        if any(p.exitcode not in (None, 0) for p in procs):
            for p in procs:
                p.terminate()
            sys.exit("a rank failed")
        time.sleep(0.05)
    if any(p.exitcode != 0 for p in procs):
        sys.exit("a rank failed")
    for step in range(steps):
        s = starts[step * nranks:(step + 1) * nranks]
        e = ends[step * nranks:(step + 1) * nranks]
        print("%.4f" % (max(e) - min(s)), flush=True)


def main(argv):
    if len(argv) < 4 or argv[1] not in ("hf", "ranks"):
        sys.exit(__doc__)
    root, steps = argv[2], int(argv[3])
    torch.set_num_threads(1)
    if argv[1] == "hf":
        hf(root, steps, int(argv[4]) if len(argv) > 4 else 128)
    else:
        ranks(root, steps, int(argv[4]) if len(argv) > 4 else 8,
              int(argv[5]) if len(argv) > 5 else 128)


if __name__ == "__main__":
    main(sys.argv)
