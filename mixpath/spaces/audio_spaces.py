"""Acoustic scene classification: MobileNetV2-like spaces over log-mel spectrograms with unidirectional kernels.

A spectrogram is an image of 1 x bands x frames (``mixpath.data.wavfolder``: height = frequency, width =
time). Its two axes mean different things, so instead of square depthwise kernels every searchable layer
convolves along one axis only, alternating: layer 0 along time (1 x k), layer 1 along frequency (k x 1),
and so on, with k in {3, 5, 7, 9} (MixPath paths, summed as in every ``mbconv`` layer) and expansion in
{3, 6}. A 1 x k kernel costs what a k x k one costs divided by k, so the space spends its multiply-adds on
width and depth rather than on square receptive fields.

``asc-s1`` is sized for DCASE2018 task 5 (9 domestic activities, 10 s clips at 16 kHz): the input shape,
1 x 40 x 501, is the default front end's spectrogram of a 10 s clip, and FLOPs are counted at that shape.
The networks end in global average pooling, so they run on clips of any length (the tests use short ones);
a dataset with more than ``num_classes`` labels needs a space of its own (``asc_space``).
"""

from __future__ import annotations

from mixpath.spaces.space import LayerSpec, SearchSpace

KERNEL_OPS = ("k3", "k5", "k7", "k9")
EXPANSIONS = (3, 6)
AXES = ("1xk", "kx1")  # along time, along frequency


def asc_space(
    name: str,
    description: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    channels: list[int],
    strides: list[int],
    head_channels: int,
    ops: tuple[str, ...] = KERNEL_OPS,
    expansions: tuple[int, ...] = EXPANSIONS,
    stem_stride: int = 2,
) -> SearchSpace:
    """An ``mbconv`` space whose layer i convolves along time (i even) or frequency (i odd); ``channels[0]``
    is the stem's (a square 3x3 conv), ``channels[i + 1]`` layer i's output."""
    layers = tuple(
        LayerSpec(
            ops=ops,
            options=(("e", expansions),),
            in_channels=channels[i],
            out_channels=channels[i + 1],
            stride=stride,
            attrs=(("kernel_shape", AXES[i % 2]),),
        )
        for i, stride in enumerate(strides)
    )
    skeleton = {"stem_channels": channels[0], "stem_stride": stem_stride, "head_channels": head_channels}
    return SearchSpace(name, description, "mbconv", input_shape, num_classes, layers, skeleton, default_m=4)


ASC_S1 = asc_space(
    "asc-s1",
    "Acoustic scenes (DCASE2018 task 5, 1x40x501 log-mel): 8 layers, 1xk / kx1 kernels alternating, k {3,5,7,9}, "
    "e {3,6}",
    (1, 40, 501),
    9,
    [16, 24, 24, 32, 32, 48, 48, 64, 64],
    [2, 1, 2, 1, 2, 1, 1, 1],
    256,
)
