"""The decoded-size limit: headers read before decoding, bounded memory.

`gsa_keras.serving.image_size` reads each format's size from its header; the serving
signatures `image_bytes` and `tf_example` and `gsa_keras.predict` refuse images
declaring more than `max_image_pixels` pixels before decoding them. The memory test
sends a 16,000 x 16,000 PNG of about 750 KB to the exported SavedModel in a
subprocess and measures the subprocess's peak resident memory.
"""

import io
import json
import os
import socket
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from gsa_keras import predict
from gsa_keras.serving import image_size
from gsa_keras.serving import module as serving_module
from tests.support import serving
from tests.support import training

DEFAULT = image_size.DEFAULT_MAX_IMAGE_PIXELS
_read_size = tf.function(image_size.read_size)
_check_images = tf.function(image_size.check_images)


# -- Encoded images, real and crafted. -------------------------------------------------


def _noise(width, height, channels=3, seed=0):
  shape = (height, width, channels) if channels > 1 else (height, width)
  return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _pil(image, fmt, **options):
  buffer = io.BytesIO()
  image.save(buffer, fmt, **options)
  return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
  return (struct.pack(">I", len(data)) + kind + data
          + struct.pack(">I", zlib.crc32(kind + data)))


def png_declaring(width: int, height: int) -> bytes:
  """A valid PNG of black RGB pixels: its rows of zeros compress about 1000:1."""
  compressor = zlib.compressobj(9)
  row = bytes(1 + 3 * width)  # Filter byte 0, then the pixels.
  data = b"".join(compressor.compress(row) for _ in range(height))
  data += compressor.flush()
  header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data)
          + _chunk(b"IEND", b""))


def _gif_frames(screen, frames):
  """A GIF with a logical screen `screen` and frames of the (width, height) given."""
  out = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + bytes(6)  # 2 colours.
  for width, height in frames:
    out += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    # LZW code size 2; clear (4), end (5): an image of no pixels (decoding fails
    # later for lack of data, which is irrelevant to the header).
    out += b"\x02\x01\x44\x00"
  return out + b"\x3b"


def _example(encoded: bytes) -> bytes:
  feature = {"image/encoded": tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[encoded]))}
  return tf.train.Example(
      features=tf.train.Features(feature=feature)).SerializeToString()


def _jpeg_with_fake_sof_in_app():
  """A JPEG whose APP1 segment holds the bytes of a SOF0 of 60000x60000."""
  jpeg = tf.io.encode_jpeg(_noise(24, 16)).numpy()
  fake = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 60000, 60000) + bytes(10)
  app1 = b"\xff\xe1" + struct.pack(">H", 2 + len(fake)) + fake
  return jpeg[:2] + app1 + jpeg[2:]


def _top_down_bmp():
  bmp = bytearray(_pil(Image.fromarray(_noise(13, 11)), "BMP"))
  height = struct.unpack("<i", bmp[22:26])[0]
  bmp[22:26] = struct.pack("<i", -height)
  return bytes(bmp)


READABLE = {  # name -> (encoded, width, height)
    "jpeg_baseline": (tf.io.encode_jpeg(_noise(33, 17)).numpy(), 33, 17),
    "jpeg_progressive": (_pil(Image.fromarray(_noise(40, 30)), "JPEG",
                              progressive=True), 40, 30),
    "jpeg_exif": (_pil(Image.fromarray(_noise(41, 29)), "JPEG",
                       exif=b"Exif\x00\x00" + bytes(40000)), 41, 29),
    "jpeg_fill_bytes": (b"\xff\xd8\xff\xff" + tf.io.encode_jpeg(_noise(9, 6)).numpy()[2:],
                        9, 6),
    "jpeg_fake_sof_in_app1": (_jpeg_with_fake_sof_in_app(), 24, 16),
    "jpeg_grayscale": (tf.io.encode_jpeg(_noise(20, 10, 1)[..., None]).numpy(), 20, 10),
    "png": (tf.io.encode_png(_noise(23, 19)).numpy(), 23, 19),
    "png_rgba": (tf.io.encode_png(_noise(7, 5, 4)).numpy(), 7, 5),
    "gif": (_pil(Image.fromarray(_noise(31, 7)), "GIF"), 31, 7),
    "bmp": (_pil(Image.fromarray(_noise(13, 11)), "BMP"), 13, 11),
    "bmp_top_down": (_top_down_bmp(), 13, 11),
    "webp_lossy_vp8": (_pil(Image.fromarray(_noise(21, 9)), "WEBP"), 21, 9),
    "webp_lossless_vp8l": (_pil(Image.fromarray(_noise(21, 9)), "WEBP",
                                lossless=True), 21, 9),
    "webp_alpha_vp8x": (_pil(Image.fromarray(_noise(17, 13, 4)), "WEBP"), 17, 13),
}


@pytest.mark.parametrize("name", sorted(READABLE))
def test_header_size_is_the_decoded_size(name):
  encoded, width, height = READABLE[name]
  size = _read_size(tf.constant(encoded))
  assert size.problem.numpy() == b""
  assert (int(size.width), int(size.height)) == (width, height)
  assert int(size.pixels) == width * height
  decoded = tf.io.decode_image(encoded, expand_animations=False)
  assert decoded.shape[:2] == (height, width)


def test_format_names():
  formats = [_read_size(tf.constant(READABLE[name][0])).format.numpy().decode()
             for name in ("jpeg_baseline", "png", "gif", "bmp", "webp_lossy_vp8")]
  assert formats == ["JPEG", "PNG", "GIF", "BMP", "WebP"]


def test_gif_size_is_the_largest_frame_not_the_screen():
  """TensorFlow decodes a GIF to its largest frame width x largest frame height."""
  one = _gif_frames((1, 1), [(40, 50)])
  size = _read_size(tf.constant(one))
  assert (int(size.width), int(size.height), int(size.frames)) == (40, 50, 1)
  two = _gif_frames((5, 5), [(30, 10), (10, 40)])
  size = _read_size(tf.constant(two))
  assert (int(size.width), int(size.height), int(size.frames)) == (30, 40, 2)
  assert int(size.pixels) == 30 * 40  # More than the frames' 300 + 400.
  many = _gif_frames((8, 8), [(100, 100)] * 30)  # 30 frames: giflib holds them all.
  size = _read_size(tf.constant(many))
  assert (int(size.frames), int(size.pixels)) == (30, 300000)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"inputs\[0\] is a GIF of 100x100 in 30 frames of 300000 "
                     r"pixels together, more than max_image_pixels = 299999\."):
    _check_images(tf.constant([many]), 299999)


def test_pil_gif_screen_matches_tensorflow():
  """A real GIF whose logical screen is larger than its frame: the frame counts."""
  gif = bytearray(READABLE["gif"][0])
  gif[6:10] = struct.pack("<HH", 500, 400)
  size = _read_size(tf.constant(bytes(gif)))
  decoded = tf.io.decode_image(bytes(gif), expand_animations=False)
  assert decoded.shape[:2] == (int(size.height), int(size.width)) == (7, 31)


UNREADABLE = {  # name -> (encoded, format, reason)
    "jpeg_scan_first": (b"\xff\xd8\xff\xda\x00\x08" + bytes(8), "JPEG",
                        "its scan (SOS) or end (EOI) comes before a frame header"),
    "jpeg_garbage": (b"\xff\xd8\xff\xe0\x00\x04ab" + b"garbage" + bytes(9), "JPEG",
                     "bytes that are not a marker come before its frame header"),
    "jpeg_truncated": (tf.io.encode_jpeg(_noise(8, 8)).numpy()[:30], "JPEG",
                       "the file ends before its frame header"),
    "jpeg_bad_length": (b"\xff\xd8\xff\xe0\x00\x01" + bytes(16), "JPEG",
                        "a marker segment before its frame header has an invalid "
                        "length"),
    "jpeg_fill_bytes": (b"\xff\xd8" + b"\xff" * 5000, "JPEG",
                        f"more than {image_size.MAX_JPEG_MARKERS} markers"),
    "png_no_ihdr": (b"\x89PNG\r\n\x1a\n" + _chunk(b"tEXt", bytes(16)), "PNG",
                    "its first chunk is not a complete IHDR chunk"),
    "png_truncated": (tf.io.encode_png(_noise(4, 4)).numpy()[:20], "PNG",
                      "its first chunk is not a complete IHDR chunk"),
    "gif_blocks": (b"GIF89a" + bytes(7) + b"\x21\xfe\x00" * 3000 + b"\x3b", "GIF",
                   f"it has more than {image_size.MAX_GIF_BLOCKS} blocks"),
    "gif_sub_blocks": (b"GIF89a" + bytes(7) + b"\x21\xfe" + b"\x01\x00" * 40000
                       + b"\x00\x3b", "GIF",
                       f"it has more than {image_size.MAX_GIF_SUB_BLOCKS} data "
                       "sub-blocks"),
    "bmp_truncated": (b"BM" + bytes(20), "BMP", "the file ends inside its header"),
    "webp_unknown_chunk": (b"RIFF\x00\x00\x00\x00WEBPABCD" + bytes(20), "WebP",
                           "its first chunk is not VP8, VP8L or VP8X"),
    "webp_vp8_no_start_code": (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(20), "WebP",
                               "its VP8 chunk lacks the key frame start code"),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_header_is_rejected_with_its_reason(name):
  encoded, fmt, reason = UNREADABLE[name]
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    _check_images(tf.constant([READABLE["png"][0], encoded]), DEFAULT)
  assert (f"Cannot read the size of inputs[1], a {fmt} image, before decoding it: "
          f"{reason}") in error.value.message


def test_unknown_format_is_left_to_the_decoder():
  size = _read_size(tf.constant(b"not an image"))
  assert size.format.numpy() == b"unknown" and int(size.pixels) == 0
  assert size.problem.numpy() == b""


@pytest.mark.parametrize("header,expected", [
    (png_declaring(1, 1)[:33], "a PNG of 16000x16000 = 256000000 pixels"),
    (b"\xff\xd8\xff\xc2\x00\x11\x08" + struct.pack(">HH", 16000, 16000) + bytes(10),
     "a JPEG of 16000x16000 = 256000000 pixels"),
    (b"BM" + bytes(16) + struct.pack("<ii", 16000, -16000) + bytes(30),
     "a BMP of 16000x16000 = 256000000 pixels"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8X" + bytes(8)
     + struct.pack("<I", 15999)[:3] + struct.pack("<I", 15999)[:3] + bytes(4),
     "a WebP of 16000x16000 = 256000000 pixels"),
    (_gif_frames((1, 1), [(16000, 16000)]),
     "a GIF of 16000x16000 = 256000000 pixels"),
])
def test_oversize_header_is_rejected_with_size_and_limit(header, expected):
  if header.startswith(b"\x89PNG"):  # Patch the IHDR of a 1x1 PNG to 16000x16000.
    header = header[:16] + struct.pack(">II", 16000, 16000) + header[24:]
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    _check_images(tf.constant([header]), DEFAULT)
  assert (f"Image too large: inputs[0] is {expected}, more than max_image_pixels = "
          f"{DEFAULT}.") in error.value.message


def test_limit_is_per_image_and_per_request():
  png = READABLE["png"][0]  # 23x19 = 437 pixels.
  tf.debugging.assert_equal(_check_images(tf.constant([png, png]), 874),
                            tf.constant([png, png]))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"Images too large: the 3 images of the request decode to "
                     r"1311 pixels together, more than max_image_pixels = 874\."):
    _check_images(tf.constant([png] * 3), 874)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"inputs\[0\] is a PNG of 23x19 = 437 pixels, more than "
                     r"max_image_pixels = 436\."):
    _check_images(tf.constant([png]), 436)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "40000000", None])
def test_bad_limit_names_the_flag(bad):
  with pytest.raises(ValueError, match=r"--max_image_pixels must be a positive "
                     rf"integer .*, got {bad!r}"):
    image_size.validate_max_image_pixels(bad)


# -- The serving module and the exported SavedModel. -----------------------------------


@pytest.fixture(scope="module")
def export_dir(serving_export):
  """The digits model of tests/test_export.py, exported with the default limit."""
  return serving_export.export_dir


def test_module_takes_its_limit_and_gives_it_to_its_siblings(serving_export):
  params, model = serving_export.params, serving_export.model
  module = serving_module.ClassifierModule(params, model=model)
  assert int(module.max_image_pixels.numpy()) == DEFAULT == 40_000_000
  module = serving_module.ClassifierModule(params, model=model, max_image_pixels=2048)
  for input_type in ("image_bytes", "tf_example"):
    sibling = module.module_for(input_type)
    assert int(sibling.max_image_pixels.numpy()) == 2048
  with pytest.raises(ValueError, match=r"--max_image_pixels must be a positive "
                     r"integer .*, got 0\."):
    serving_module.ClassifierModule(params, model=model, max_image_pixels=0)


def _declaring(width, height):
  """The first 33 bytes of a PNG (signature and IHDR) declaring width x height."""
  header = png_declaring(1, 1)[:33]
  return header[:16] + struct.pack(">II", width, height) + header[24:]


def test_saved_model_records_and_applies_the_limit(export_dir):
  loaded = tf.saved_model.load(export_dir)
  assert int(loaded.max_image_pixels.numpy()) == DEFAULT
  assert predict.max_image_pixels(loaded) == DEFAULT
  digit = serving.digit_pngs(1)[0]
  requests = [  # Each through image_bytes and through tf_example.
      ([_declaring(16000, 16000)],
       "Image too large: inputs[0] is a PNG of 16000x16000 = 256000000 pixels, "
       "more than max_image_pixels = 40000000."),
      ([digit, _declaring(5000, 5000), _declaring(4000, 4000)],
       "Images too large: the 3 images of the request decode to 41001024 pixels "
       "together, more than max_image_pixels = 40000000."),
      ([digit, b"\xff\xd8\xff\xda" + bytes(20)],
       "Cannot read the size of inputs[1], a JPEG image, before decoding it: its "
       "scan (SOS) or end (EOI) comes before a frame header (SOF marker)."),
  ]
  for inputs, message in requests:
    for key, wrap in (("image_bytes", lambda x: x), ("tf_example", _example)):
      with pytest.raises(tf.errors.InvalidArgumentError) as error:
        loaded.signatures[key](inputs=tf.constant([wrap(x) for x in inputs]))
      assert message in error.value.message, key
  outputs = {key: loaded.signatures[key](inputs=tf.constant([wrap(digit)]))["logits"]
             for key, wrap in (("image_bytes", lambda x: x), ("tf_example", _example))}
  serving.assert_same_logits(outputs["image_bytes"], outputs["tf_example"])


_MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys
    import tensorflow as tf
    export_dir, bomb_path, control_path = sys.argv[1:4]
    model = tf.saved_model.load(export_dir)
    def status_mb(key):
      with open("/proc/self/status") as f:
        for line in f:
          if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    def reset_peak():  # The peak resident memory (VmHWM) becomes the current one.
      with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    def example(encoded):
      feature = {"image/encoded": tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[encoded]))}
      return tf.train.Example(features=tf.train.Features(
          feature=feature)).SerializeToString()
    digit = tf.io.encode_png(tf.zeros([32, 32, 3], tf.uint8)).numpy()
    for _ in range(3):  # Warm-up: tracing, allocator pools.
      model.signatures["image_bytes"](inputs=tf.constant([digit]))
      model.signatures["tf_example"](inputs=tf.constant([example(digit)]))
    bomb = open(bomb_path, "rb").read()
    result = {"bomb_bytes": len(bomb), "errors": {}}
    reset_peak()
    before = status_mb("VmHWM")
    for key, inputs in (("image_bytes", bomb), ("tf_example", example(bomb))):
      try:
        model.signatures[key](inputs=tf.constant([inputs]))
        result["errors"][key] = None
      except tf.errors.InvalidArgumentError as e:
        result["errors"][key] = e.message
    after = status_mb("VmHWM")
    # Control: an image under the limit, which really is decoded, raises the peak.
    reset_peak()
    control_before = status_mb("VmHWM")
    model.signatures["image_bytes"](inputs=tf.constant([open(control_path, "rb").read()]))
    result.update(before_mb=before, after_mb=after, control_before_mb=control_before,
                  control_after_mb=status_mb("VmHWM"),
                  ru_maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))
""")


@pytest.mark.slow
def test_decompression_bomb_is_rejected_in_bounded_memory(export_dir, tmp_path):
  """A ~750 KB PNG declaring 16000x16000 (768 MB as uint8, 3 GB as float32)."""
  bomb, control = tmp_path / "bomb.png", tmp_path / "control.png"
  bomb.write_bytes(png_declaring(16000, 16000))
  control.write_bytes(png_declaring(4000, 4000))  # 16 MP: decoded, under the limit.
  assert os.path.getsize(bomb) < 1_000_000
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(
      [sys.executable, "-c", _MEMORY_PROBE, export_dir, str(bomb), str(control)],
      capture_output=True, text=True, timeout=600, env=env, cwd=training.REPO,
      check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  measured = json.loads(result.stdout.strip().splitlines()[-1])
  print(json.dumps(measured, indent=1))
  for key in ("image_bytes", "tf_example"):
    assert ("Image too large: inputs[0] is a PNG of 16000x16000 = 256000000 pixels, "
            "more than max_image_pixels = 40000000.") in measured["errors"][key]
  assert measured["after_mb"] - measured["before_mb"] < 200
  # The probe sees decoding: 16 MP decode to 48 MB of uint8 and 192 MB of float32.
  assert measured["control_after_mb"] - measured["control_before_mb"] > 150


# -- gsa_keras.predict. ----------------------------------------------------------------


def _unused_model(**_):
  raise AssertionError("the model must not be called")


def test_predict_refuses_oversize_and_unreadable_files(tmp_path):
  bomb = tmp_path / "bomb.png"
  bomb.write_bytes(png_declaring(8000, 6000))  # 48 MP.
  with pytest.raises(ValueError) as error:
    predict.predict(_unused_model, [str(bomb)])
  assert str(error.value) == (
      f"--image: cannot classify '{bomb}': Image too large: inputs[0] is a PNG of "
      "8000x6000 = 48000000 pixels, more than max_image_pixels = 40000000.")
  with pytest.raises(ValueError, match=r"inputs\[0\] is a PNG of 8000x6000"):
    predict.predict(_unused_model, [str(bomb)], max_pixels=47_999_999)
  with pytest.raises(ValueError, match=f"--image: '{tmp_path}' is a directory, not an "
                     "image file."):
    predict.predict(_unused_model, [str(tmp_path)])
  empty = tmp_path / "empty.png"
  empty.write_bytes(b"")
  with pytest.raises(ValueError, match=f"--image: '{empty}' is empty"):
    predict.predict(_unused_model, [str(empty)])
  unreadable = str(tmp_path / "socket.png")  # Exists, but open() fails (ENXIO).
  with socket.socket(socket.AF_UNIX) as server:
    server.bind(unreadable)
    with pytest.raises(ValueError, match=f"--image: cannot read '{unreadable}': .*No "
                       "such device or address"):
      predict.read_image_file(unreadable)


@pytest.mark.slow
def test_predict_command_line_gives_one_line_errors(export_dir, tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(
      [sys.executable, "-m", "gsa_keras.predict", f"--saved_model={export_dir}",
       f"--image={os.path.join(serving.SAMPLES, 'digit_7.png')}", f"--image={tmp_path}"],
      capture_output=True, text=True, timeout=300, env=env, cwd=training.REPO,
      check=False)
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f"gsa_keras.predict: error: --image: '{tmp_path}' is a directory, not an image "
      "file."), result.stderr[-2000:]
