"""The decoded size of an encoded image, read from its header before decoding.

A small encoded image can decode to an enormous one (a PNG of a few hundred KB can
declare 16,000 x 16,000 pixels), so the serving signatures and `gsa_keras.predict`
read each image's size from its header with TensorFlow ops, in the graph, and refuse
to decode beyond a limit (`check_images`). The formats are the ones
`tf.io.decode_image` accepts, recognised by the same magic bytes:

  JPEG  the first frame header (SOF0..SOF15 except DHT, JPG and DAC), found by
        following the marker segments from the start of the file; fill bytes are
        skipped. Rejected: bytes that are not a marker, a scan or the end of the image
        before the frame header, an invalid segment length, or more than
        `MAX_JPEG_MARKERS` markers before it.
  PNG   the IHDR chunk, which must come first (width and height, big-endian).
  GIF   every image descriptor: TensorFlow decodes a GIF to the largest frame width
        by the largest frame height (not the logical screen's size), and giflib
        holds every frame, so the size is the largest width x the largest height
        and the pixels counted are the most of that and the sum of the frames'
        pixels. The blocks are followed to the trailer; more than `MAX_GIF_BLOCKS`
        blocks (frames and extensions) or `MAX_GIF_SUB_BLOCKS` data sub-blocks
        are rejected.
  BMP   the BITMAPINFOHEADER width and height (a negative height is a top-down
        image); TensorFlow's BMP decoder also requires the pixel data to be in the
        file, so a BMP cannot decode to more than its own size.
  WebP  the first chunk: VP8 (the key frame's 14-bit width and height), VP8L (the
        14-bit width and height after the signature) or VP8X (the 24-bit canvas
        width and height, which bound every frame of an animation).

A header that cannot be read is rejected with a message saying why. Bytes of no
accepted format pass the size check: the decoder rejects them before allocating
anything (`Unknown image file format`).
"""

from typing import NamedTuple

import tensorflow as tf

# The default limit on the decoded pixels of one request (`--max_image_pixels`).
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
MAX_JPEG_MARKERS = 1024  # Markers (and fill bytes) before a JPEG's frame header.
MAX_GIF_BLOCKS = 2048  # Blocks of one GIF: frames and extensions.
MAX_GIF_SUB_BLOCKS = 32768  # Data sub-blocks of one GIF (up to 255 bytes each).

FORMATS = ("unknown", "JPEG", "PNG", "GIF", "BMP", "WebP")
_UNKNOWN, _JPEG, _PNG, _GIF, _BMP, _WEBP = range(len(FORMATS))
_PADDING = 16  # Zero bytes after the data, so that a header read never leaves it.

_JPEG_PROBLEMS = (
    "",
    "",
    "the file ends before its frame header (SOF marker)",
    "bytes that are not a marker come before its frame header (SOF marker)",
    "its scan (SOS) or end (EOI) comes before a frame header (SOF marker)",
    "a marker segment before its frame header has an invalid length",
    f"more than {MAX_JPEG_MARKERS} markers come before its frame header "
    "(SOF marker)",
)
_JPEG_GOING, _JPEG_FOUND = 0, 1
_JPEG_TRUNCATED, _JPEG_NOT_MARKER, _JPEG_NO_SOF, _JPEG_BAD_LENGTH, _JPEG_TOO_MANY = (
    range(2, 7))


class ImageSize(NamedTuple):
  """An encoded image's decoded size, as its header declares it (int64 scalars).

  `format` is one of `FORMATS` (a string scalar). `pixels` is width * height, or
  for a GIF the most of that and the pixels of all its frames. `problem` is empty,
  or says why the size cannot be read safely (the image must then be rejected).
  """
  format: tf.Tensor
  width: tf.Tensor
  height: tf.Tensor
  pixels: tf.Tensor
  frames: tf.Tensor
  problem: tf.Tensor


def _size(format_index, width, height, pixels=None, frames=1, problem=""):
  width, height = tf.cast(width, tf.int64), tf.cast(height, tf.int64)
  if pixels is None:
    pixels = width * height
  return (tf.constant(format_index, tf.int32), width, height,
          tf.cast(pixels, tf.int64), tf.cast(frames, tf.int64),
          tf.convert_to_tensor(problem, tf.string))


class _Bytes:
  """The encoded bytes, read by position; positions past the end read as zeros."""

  def __init__(self, encoded: tf.Tensor):
    data = tf.io.decode_raw(encoded, tf.uint8)
    self.length = tf.size(data, out_type=tf.int64)
    self._padded = tf.concat([data, tf.zeros([_PADDING], tf.uint8)], axis=0)

  def at(self, position, count: int) -> tf.Tensor:
    """int64 [count]: the bytes from `position` on (zeros past the end)."""
    indices = tf.cast(position, tf.int64) + tf.range(count, dtype=tf.int64)
    indices = tf.clip_by_value(indices, 0, self.length + _PADDING - 1)
    return tf.cast(tf.gather(self._padded, indices), tf.int64)

  def byte(self, position) -> tf.Tensor:
    """The uint8 byte at `position` (at or past the end: 0)."""
    return tf.gather(self._padded, tf.minimum(position, self.length))

  def equals(self, position: int, magic: bytes) -> tf.Tensor:
    """Whether the bytes at `position` are `magic`."""
    expected = tf.constant(list(magic), tf.int64)
    return tf.reduce_all(tf.equal(self.at(position, len(magic)), expected))


def _little_endian(values) -> tf.Tensor:
  return sum(values[i] * (256 ** i) for i in range(values.shape[0]))


def _big_endian(values) -> tf.Tensor:
  count = values.shape[0]
  return sum(values[i] * (256 ** (count - 1 - i)) for i in range(count))


def _signed32(value: tf.Tensor) -> tf.Tensor:
  return tf.where(value >= 2**31, value - 2**32, value)


def _jpeg(data: _Bytes):
  """The first frame header's size, following the marker segments from byte 2."""

  def step(position, count, status, width, height):
    v = data.at(position, 9)
    marker = v[1]
    is_marker = tf.equal(v[0], 0xFF)
    fill = is_marker & tf.equal(marker, 0xFF)
    sof = (is_marker & (marker >= 0xC0) & (marker <= 0xCF) &
           tf.not_equal(marker, 0xC4) & tf.not_equal(marker, 0xC8) &
           tf.not_equal(marker, 0xCC))
    standalone = is_marker & (((marker >= 0xD0) & (marker <= 0xD8)) |
                              tf.equal(marker, 0x01))
    no_sof = is_marker & (tf.equal(marker, 0xD9) | tf.equal(marker, 0xDA))
    length = v[2] * 256 + v[3]
    segment = (is_marker & ~fill & ~sof & ~standalone & ~no_sof &
               tf.not_equal(marker, 0x00))
    needed = tf.where(sof, 9, tf.where(segment, 4, 2))
    status = tf.where(
        position + tf.cast(needed, tf.int64) > data.length, _JPEG_TRUNCATED,
        tf.where(~is_marker, _JPEG_NOT_MARKER,
                 tf.where(no_sof, _JPEG_NO_SOF,
                          tf.where(sof, _JPEG_FOUND,
                                   tf.where(segment & (length < 2),
                                            _JPEG_BAD_LENGTH,
                                            tf.where(tf.equal(marker, 0x00),
                                                     _JPEG_NOT_MARKER,
                                                     _JPEG_GOING))))))
    advance = tf.where(fill, tf.constant(1, tf.int64),
                       tf.where(segment, 2 + length, tf.constant(2, tf.int64)))
    found = tf.equal(status, _JPEG_FOUND)
    return (tf.where(tf.equal(status, _JPEG_GOING), position + advance, position),
            count + 1, status,
            tf.where(found, v[7] * 256 + v[8], width),
            tf.where(found, v[5] * 256 + v[6], height))

  zero = tf.constant(0, tf.int64)
  _, count, status, width, height = tf.while_loop(
      lambda position, count, status, width, height: tf.equal(status, _JPEG_GOING),
      step, (tf.constant(2, tf.int64), zero, tf.constant(_JPEG_GOING), zero, zero),
      maximum_iterations=MAX_JPEG_MARKERS)
  del count
  status = tf.where(tf.equal(status, _JPEG_GOING), _JPEG_TOO_MANY, status)
  return _size(_JPEG, width, height,
               problem=tf.gather(tf.constant(_JPEG_PROBLEMS), status))


def _png(data: _Bytes):
  """The IHDR chunk's width and height."""
  readable = (data.length >= 24) & data.equals(12, b"IHDR")
  problem = tf.where(readable, "", "its first chunk is not a complete IHDR chunk")
  return _size(_PNG, _big_endian(data.at(16, 4)), _big_endian(data.at(20, 4)),
               problem=problem)


def _color_table_bytes(packed: tf.Tensor) -> tf.Tensor:
  """The bytes of the colour table a GIF's packed field declares (0 if none)."""
  present = tf.bitwise.bitwise_and(packed, 0x80) > 0
  entries = tf.bitwise.left_shift(tf.constant(2, tf.int64),
                                  tf.bitwise.bitwise_and(packed, 7))
  return tf.where(present, 3 * entries, 0)


def _skip_sub_blocks(data: _Bytes, position, budget):
  """Skips the data sub-blocks starting at `position` (at most `budget` of them).

  Each sub-block is a size byte and that many bytes; size 0 ends them.

  Returns:
    (the position after them, the sub-blocks read, whether they ended: a size 0 or
    the end of the data, rather than the budget).
  """
  def step(position, size, count):
    del size
    size = tf.cast(data.byte(position), tf.int64)
    return position + 1 + size, size, count + 1

  # Past the end, `byte` reads the zero padding: a size 0 ends the loop.
  position, size, count = tf.while_loop(
      lambda position, size, count: size > 0, step,
      (position, tf.constant(1, tf.int64), tf.constant(0, tf.int64)),
      maximum_iterations=tf.cast(budget, tf.int32))
  return position, count, tf.equal(size, 0)


def _gif(data: _Bytes):
  """The largest frame width and height, and the pixels of all frames."""
  zero = tf.constant(0, tf.int64)
  start = 13 + _color_table_bytes(data.at(10, 1)[0])

  def step(position, budget, done, exhausted, frames, width, height, pixels):
    del done, exhausted
    v = data.at(position, 10)
    # An image descriptor: 0x2C, left, top, width, height (2 bytes each), packed
    # fields; then the local colour table, the LZW minimum code size byte and the
    # image's data sub-blocks. An extension: 0x21, a label, data sub-blocks.
    image = tf.equal(v[0], 0x2C) & (position + 10 <= data.length)
    extension = tf.equal(v[0], 0x21)
    frame_width, frame_height = _little_endian(v[5:7]), _little_endian(v[7:9])
    # The trailer (0x3B), a truncated descriptor or an unknown block ends the
    # walk: giflib stops there too, before allocating anything for what follows.
    blocks_start = tf.where(image, position + 11 + _color_table_bytes(v[9]),
                            tf.where(extension, position + 2, data.length))
    next_position, used, ended = _skip_sub_blocks(data, blocks_start, budget)
    return (next_position, budget - used, (~image & ~extension) | ~ended, ~ended,
            frames + tf.cast(image, tf.int64),
            tf.where(image, tf.maximum(width, frame_width), width),
            tf.where(image, tf.maximum(height, frame_height), height),
            pixels + tf.where(image, frame_width * frame_height, 0))

  position, _, done, exhausted, frames, width, height, pixels = tf.while_loop(
      lambda position, budget, done, *_: ~done & (position < data.length),
      step, (start, tf.constant(MAX_GIF_SUB_BLOCKS, tf.int64), data.length < 13,
             tf.constant(False), zero, zero, zero, zero),
      maximum_iterations=MAX_GIF_BLOCKS)
  problem = tf.where(
      exhausted, f"it has more than {MAX_GIF_SUB_BLOCKS} data sub-blocks",
      tf.where(~done & (position < data.length),
               f"it has more than {MAX_GIF_BLOCKS} blocks (frames and extensions)",
               ""))
  return _size(_GIF, width, height, pixels=tf.maximum(width * height, pixels),
               frames=frames, problem=problem)


def _bmp(data: _Bytes):
  """The BITMAPINFOHEADER's width and height (negative height: top-down rows)."""
  width = _signed32(_little_endian(data.at(18, 4)))
  height = tf.abs(_signed32(_little_endian(data.at(22, 4))))
  problem = tf.where(data.length >= 26, "",
                     "the file ends inside its header (26 bytes needed)")
  return _size(_BMP, width, height, pixels=tf.maximum(width, 0) * height,
               problem=problem)


def _webp(data: _Bytes):
  """The size in the first chunk: VP8, VP8L or VP8X."""
  # VP8: frame tag (3 bytes) at 20, start code 9d 01 2a, 14-bit width and height.
  vp8 = data.equals(12, b"VP8 ")
  vp8_readable = data.equals(23, b"\x9d\x01\x2a")
  vp8_width = tf.bitwise.bitwise_and(_little_endian(data.at(26, 2)), 0x3FFF)
  vp8_height = tf.bitwise.bitwise_and(_little_endian(data.at(28, 2)), 0x3FFF)
  # VP8L: signature 0x2f at 20, then 14 bits of width - 1 and 14 of height - 1.
  vp8l = data.equals(12, b"VP8L")
  vp8l_readable = data.equals(20, b"\x2f")
  bits = _little_endian(data.at(21, 4))
  vp8l_width = tf.bitwise.bitwise_and(bits, 0x3FFF) + 1
  vp8l_height = tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 14), 0x3FFF) + 1
  # VP8X: flags (4 bytes) at 20, then 24 bits of canvas width - 1 and height - 1.
  vp8x = data.equals(12, b"VP8X")
  vp8x_width = _little_endian(data.at(24, 3)) + 1
  vp8x_height = _little_endian(data.at(27, 3)) + 1
  width = tf.where(vp8, vp8_width, tf.where(vp8l, vp8l_width, vp8x_width))
  height = tf.where(vp8, vp8_height, tf.where(vp8l, vp8l_height, vp8x_height))
  problem = tf.where(
      data.length < 30, "the file ends inside its header (30 bytes needed)",
      tf.where(vp8, tf.where(vp8_readable, "",
                             "its VP8 chunk lacks the key frame start code"),
               tf.where(vp8l, tf.where(vp8l_readable, "",
                                       "its VP8L chunk lacks the signature byte"),
                        tf.where(vp8x, "", "its first chunk is not VP8, VP8L or "
                                 "VP8X"))))
  return _size(_WEBP, width, height, problem=problem)


def read_size(encoded: tf.Tensor) -> ImageSize:
  """The decoded size that an encoded image's header declares, without decoding it.

  Args:
    encoded: A string scalar, an encoded image (JPEG, PNG, GIF, BMP or WebP, told
      apart by their magic bytes as `tf.io.decode_image` does).

  Returns:
    An `ImageSize`. Bytes of no accepted format give format 'unknown', size 0 and no
    problem: the decoder rejects them without allocating anything.
  """
  data = _Bytes(tf.convert_to_tensor(encoded, tf.string))
  index = tf.where(
      data.equals(0, b"\xff\xd8\xff"), _JPEG,
      tf.where(data.equals(0, b"\x89PNG\r\n\x1a\n"), _PNG,
               tf.where(data.equals(0, b"GIF8"), _GIF,
                        tf.where(data.equals(0, b"BM"), _BMP,
                                 tf.where(data.equals(0, b"RIFF") &
                                          data.equals(8, b"WEBP"), _WEBP,
                                          _UNKNOWN)))))
  index, width, height, pixels, frames, problem = tf.switch_case(index, [
      lambda: _size(_UNKNOWN, 0, 0),
      lambda: _jpeg(data),
      lambda: _png(data),
      lambda: _gif(data),
      lambda: _bmp(data),
      lambda: _webp(data),
  ])
  return ImageSize(tf.gather(tf.constant(FORMATS), index), width, height, pixels,
                   frames, problem)


def validate_max_image_pixels(max_image_pixels) -> int:
  """`max_image_pixels` as an int, or a ValueError naming `--max_image_pixels`."""
  if (isinstance(max_image_pixels, bool) or not isinstance(max_image_pixels, int)
      or max_image_pixels < 1):
    raise ValueError(f"--max_image_pixels must be a positive integer (pixels of "
                     f"the decoded images of one request), got {max_image_pixels!r}.")
  return max_image_pixels


def _text(*parts) -> tf.Tensor:
  """A string scalar joining `parts`: strings, string tensors and integer tensors."""
  return tf.strings.join([
      part if isinstance(part, str) or part.dtype == tf.string
      else tf.strings.as_string(part) for part in parts])


def _describe(size: ImageSize) -> tf.Tensor:
  """'a PNG of 16000x16000 = 256000000 pixels' (GIFs: with their frames' pixels)."""
  single = _text("a ", size.format, " of ", size.width, "x", size.height, " = ",
                 size.pixels, " pixels")
  frames = _text("a ", size.format, " of ", size.width, "x", size.height, " in ",
                 size.frames, " frames of ", size.pixels, " pixels together")
  return tf.where(size.frames > 1, frames, single)


def check_images(encoded: tf.Tensor, max_image_pixels: int) -> tf.Tensor:
  """Encoded images [batch], once their headers' sizes are checked; else an error.

  Args:
    encoded: String [batch], encoded images.
    max_image_pixels: The most pixels that one image, and all the images
      together, may decode to.

  Returns:
    `encoded`, after an assertion that fails (InvalidArgumentError) if an image's
    size cannot be read, if an image declares more than `max_image_pixels` pixels,
    or if the images together do. Each message names the image
    (`inputs[index]`), its format and size, and the limit.
  """
  max_image_pixels = validate_max_image_pixels(max_image_pixels)
  encoded = tf.convert_to_tensor(encoded, tf.string)
  sizes = tf.map_fn(
      read_size, encoded, parallel_iterations=32,
      fn_output_signature=ImageSize(tf.string, tf.int64, tf.int64, tf.int64,
                                    tf.int64, tf.string))
  unreadable = tf.not_equal(sizes.problem, "")
  too_large = sizes.pixels > max_image_pixels
  total = tf.reduce_sum(sizes.pixels)
  first_unreadable = tf.argmax(tf.cast(unreadable, tf.int32), output_type=tf.int32)
  first_too_large = tf.argmax(tf.cast(too_large, tf.int32), output_type=tf.int32)

  def describe(index):
    return _describe(ImageSize(*(tf.gather(field, index) for field in sizes)))

  message = tf.case([
      (tf.reduce_any(unreadable), lambda: _text(
          "Cannot read the size of inputs[", first_unreadable, "], a ",
          tf.gather(sizes.format, first_unreadable), " image, before decoding it: ",
          tf.gather(sizes.problem, first_unreadable), ".")),
      (tf.reduce_any(too_large), lambda: _text(
          "Image too large: inputs[", first_too_large, "] is ",
          describe(first_too_large), f", more than max_image_pixels = "
          f"{max_image_pixels}.")),
      (total > max_image_pixels, lambda: _text(
          "Images too large: the ", tf.size(encoded), " images of the request "
          "decode to ", total, f" pixels together, more than max_image_pixels = "
          f"{max_image_pixels}.")),
  ], default=lambda: tf.constant(""))
  check = tf.debugging.Assert(tf.equal(message, ""), [message], name="check_size")
  with tf.control_dependencies([check]):
    return tf.identity(encoded)
