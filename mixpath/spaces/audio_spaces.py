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
a dataset with another number of labels needs a space of its own (``mbconv_space(..., kernel_shapes=AXES)``).
"""

from __future__ import annotations

from mixpath.spaces.mbconv_spaces import mbconv_space

AXES = ("1xk", "kx1")  # along time, along frequency


ASC_S1 = mbconv_space(
    "asc-s1",
    "Acoustic scenes (DCASE2018 task 5, 1x40x501 log-mel): 8 layers, 1xk / kx1 kernels alternating, k {3,5,7,9}, "
    "e {3,6}",
    (1, 40, 501),
    9,
    [16, 24, 24, 32, 32, 48, 48, 64, 64],
    [2, 1, 2, 1, 2, 1, 1, 1],
    256,
    stem_stride=2,
    kernel_shapes=AXES,
)
