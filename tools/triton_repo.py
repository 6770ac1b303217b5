"""Write a Triton Inference Server model repository for an exported dynamic-factor model.

    python tools/triton_repo.py work_dirs/srcnn_dynamic/end2end.onnx --out triton_models

Writes OUT/NAME/config.pbtxt and OUT/NAME/1/model.onnx (a copy) for Triton's onnxruntime
backend, or its openvino backend. Names, dims and data types are read from the .onnx. The
config has max_batch_size 0: the factor input has no batch dimension, so Triton cannot batch
requests of this model; a request carries N images of one size and one factor (see
mmdeploy_srcnn/serving/triton.py).

exit status: 0 when written, 2 on bad input (one line on stderr naming it).
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

from mmdeploy_srcnn.serving import BACKENDS, TritonRepositoryError, write_model_repository
from mmdeploy_srcnn.utils.cli import EXIT_USER_ERROR, OneLineArgumentParser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = OneLineArgumentParser(
        description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', type=Path, metavar='MODEL.onnx', help='the exported model')
    parser.add_argument('--out', type=Path, required=True, metavar='DIR',
                        help='the model repository (created if missing)')
    parser.add_argument('--name', default='srcnn', help='model name in the repository '
                        '(default: srcnn)')
    parser.add_argument('--backend', choices=BACKENDS, default=BACKENDS[0],
                        help='Triton backend (default: onnxruntime)')
    parser.add_argument('--max-batch-size', type=int, default=0, metavar='N',
                        help='0 (default): the only value this model supports (the factor '
                             'input has no batch dimension); other values are refused')
    parser.add_argument('--instances', type=int, default=1, metavar='N',
                        help='model instances on the CPU, each serving its own requests '
                             '(default: 1)')
    parser.add_argument('--accept-openvino-factor-bug', action='store_true',
                        help='write the openvino variant although OpenVINO 2026.4 reuses the '
                             'previous factor when a request changes only the factor (safe '
                             'when every request of one image size uses one factor)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the files of an existing repository entry')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        written = write_model_repository(args.model, args.out, args.name, args.backend,
                                         args.max_batch_size, args.instances, args.overwrite,
                                         args.accept_openvino_factor_bug)
    except TritonRepositoryError as err:
        print(f'triton_repo: error: {err}', file=sys.stderr)
        return EXIT_USER_ERROR
    print(f'wrote {written["config"]} and {written["model"]} ({args.backend} backend)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
