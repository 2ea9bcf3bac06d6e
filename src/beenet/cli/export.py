"""``beenet export onnx|pretrained``: a checkpoint as an ONNX model (dynamic batch, metadata inside)
or as a folder others can load (safetensors + config.json + model card, :mod:`beenet.artifacts.pretrained`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from beenet.cli.argtypes import nonnegative_float
from beenet.labels import CONTEXT_DIM, NUM_CATEGORIES, NUM_JOINTS, NUM_VAD

DESCRIPTION = f"""\
Export a trained beenet checkpoint to another format.

  onnx   an ONNX model (opset 17, TorchScript exporter) with a dynamic batch axis. Its inputs
         are, in order, frames [B,T,3,S,S], frame_mask [B,T], then crops [B,T,3,C,C],
         skeleton [B,Ts,{NUM_JOINTS},3] + skeleton_mask [B,Ts,{NUM_JOINTS}] and context [B,{CONTEXT_DIM}] when the model
         reads them; its outputs categories [B,{NUM_CATEGORIES}], vad [B,{NUM_VAD}] (BoLD scale) and one
         'stream.<name>' [B,{NUM_CATEGORIES + NUM_VAD}] per model stream. The model name, the checkpoint's SHA-256,
         the beenet version and the full run config are stored in the ONNX metadata_props,
         so 'beenet predict --engine onnx --checkpoint FILE' needs nothing else.

  pretrained   a folder others can load without beenet's training code or pickle:
         model.safetensors (the weights), config.json (the full run config, label names,
         metrics, provenance: the checkpoint's and the weights' sha256, the published weights
         the model started from) and README.md (a model card: training data, protocol, val
         metrics with chance levels, how to load it). Upload the folder to the Hugging Face Hub
         as it is; 'beenet predict --checkpoint DIR_OR_USER/NAME' and
         Predictor.from_pretrained(...) load it.

For onnx, --checkpoint may also be an exported folder or a Hub id. With --check, ONNX Runtime and PyTorch are run on the same random batch (sizes 1 and 3) and
the largest difference is printed; the export fails when it exceeds --atol.
"""

EPILOG = """\
examples:
  beenet export onnx --checkpoint runs/demo/best.pt --out demo.onnx
  beenet export onnx --checkpoint best.pt --out model.onnx --check
  beenet predict talk.mp4 --checkpoint model.onnx --engine onnx --out preds
  beenet export pretrained --checkpoint runs/demo/best.pt --out demo-model --training-data "beenet synth"
  beenet predict talk.mp4 --checkpoint demo-model --out preds
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    o = sub.add_parser("onnx", help="export to ONNX", description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter, prog=f"{prog} onnx")
    o.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="a 'beenet train' checkpoint (.pt), an exported folder or a Hub id")
    o.add_argument("--out", required=True, metavar="FILE", help="the .onnx file to write")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    o.add_argument("--check", action="store_true", help="compare ONNX Runtime with PyTorch after exporting")
    o.add_argument("--atol", type=nonnegative_float, default=1e-4, help="largest difference --check accepts (default 1e-4)")
    r = sub.add_parser("pretrained", help="export a folder others can load (safetensors + config + card)",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter, prog=f"{prog} pretrained")
    r.add_argument("--checkpoint", required=True, metavar="CKPT", help="a 'beenet train' checkpoint (.pt)")
    r.add_argument("--out", required=True, metavar="DIR", help="the folder to write (missing or empty)")
    r.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    r.add_argument("--training-data", metavar="TEXT", default=None,
                   help="what the model was trained on, for the model card (the checkpoint does not "
                        "record the data directory), e.g. 'BoLD 1.0 train split'")
    return p


def run(args: argparse.Namespace) -> int:
    if args.format == "pretrained":
        from beenet.artifacts.pretrained import FOLDER_FILES  # lazy: keeps 'beenet export --help' fast (loads torch)
        from beenet.artifacts.share import export_pretrained  # lazy: keeps 'beenet export --help' fast (loads torch)

        out = export_pretrained(args.checkpoint, args.out, overwrite=args.overwrite,
                                training_data=args.training_data)
        sizes = ", ".join(f"{n} {(Path(out) / n).stat().st_size / 1e6:.2f} MB" for n in FOLDER_FILES)
        print(f"wrote {out}/ ({sizes})")
        return 0
    from beenet.inference.onnx import export_onnx, onnx_parity  # lazy: keeps 'beenet export --help' fast (loads torch)

    out = export_onnx(args.checkpoint, args.out, opset=args.opset)
    print(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB)")
    if args.check:
        diff = onnx_parity(args.checkpoint, out)
        ok = diff <= args.atol
        print(f"ONNX Runtime vs PyTorch: max |difference| = {diff:.2e} ({'ok' if ok else 'TOO LARGE'}, atol {args.atol:g})")
        if not ok:
            print(f"beenet export: error: {out} differs from the checkpoint by {diff:.2e} > {args.atol:g}", file=sys.stderr)
            return 1
    return 0
