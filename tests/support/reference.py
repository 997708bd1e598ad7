"""Independent loop-by-loop NumPy (float64) reference of the GSA paper's equations.

Written from "Global Self-Attention Networks for Image Recognition" (Section 3.1,
eqs. 1-2; Section 4.2 / Table 2; Appendix B, eqs. 3-8), NOT from the layer code.
Everything here is deliberately naive: explicit Python loops over batch elements,
heads, pixels and attended positions, with at most a 1-D dot product inside the
innermost loop, so that each line can be checked against an equation by eye.

Conventions (the layer's public weight layout, see `tests/test_reference_parity.py`):

* Input ``x``: (b, h, w, d), channels-last. ``x`` (height index) is the first spatial
  axis and ``y`` (width index) the second, as in Appendix B.
* ``kqv_kernel``: (d, n, c). Along ``c``: keys ``[0:kh]`` (only if the variant has keys),
  then queries (``kh`` channels), then values (``vh`` channels)  -- eq. (3).
* Relative position tables (``column_embeddings`` / ``row_embeddings``): (2M+1, kh);
  row ``r + M`` holds the embedding of relative shift ``r`` (``r = i - x`` for columns,
  ``r = j - y`` for rows). ``M`` is recovered from the table's length, so a table that
  is larger than needed is used through its central part. Shared by all heads.
* Output channel index = ``head * vh + v`` (head-major).

The keyword-only ``mutation`` arguments exist only so that the tests can show the
reference is discriminating (a deliberately wrong variant must NOT match the layer).
Leave them at their defaults for the paper's semantics.
"""

import itertools
import math

import numpy as np

# ---------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------


def softmax_1d(logits):
  """Numerically stable softmax of a 1-D float64 array."""
  logits = np.asarray(logits, dtype=np.float64)
  shifted = logits - np.max(logits)
  e = np.exp(shifted)
  return e / np.sum(e)


def window_half_width(max_relative_shift):
  """L of eq. (5): the largest |relative shift| attended to; None means global."""
  return math.inf if max_relative_shift is None else max_relative_shift


def relative_embedding(table, shift, sign=+1):
  """Row of a relative-position table for a relative shift (the re-indexing of eqs. 5-6).

  ``table`` has 2M+1 rows and row ``r + M`` is the embedding of shift ``r``.
  ``sign=-1`` is a deliberate mutation (uses the embedding of ``-shift``).
  """
  rows = table.shape[0]
  assert rows % 2 == 1, f"relative table must have an odd number of rows, got {rows}"
  m = (rows - 1) // 2
  r = sign * shift
  assert -m <= r <= m, f"shift {r} outside the table's range [-{m}, {m}]"
  return table[r + m]


def central_table(table, extent):
  """Central part of a relative table: shifts -(extent-1)..(extent-1) (2*extent-1 rows)."""
  m = (table.shape[0] - 1) // 2
  assert extent - 1 <= m
  return table[m - (extent - 1):m + (extent - 1) + 1]


# ---------------------------------------------------------------------------------
# Eq. (3): the fused KQV 1x1 projection
# ---------------------------------------------------------------------------------


def kqv_projection(x, kqv_kernel):
  """Eq. (3): P[b,x,y,n,c] = sum_d X[b,x,y,d] W[d,n,c], loop over pixels and d."""
  x = np.asarray(x, dtype=np.float64)
  w = np.asarray(kqv_kernel, dtype=np.float64)
  b, h, wd, d = x.shape
  assert w.shape[0] == d
  _, n, c = w.shape
  out = np.zeros((b, h, wd, n, c), dtype=np.float64)
  for bi in range(b):
    for px in range(h):
      for py in range(wd):
        acc = np.zeros((n, c), dtype=np.float64)
        for di in range(d):
          acc += x[bi, px, py, di] * w[di]
        out[bi, px, py] = acc
  return out


def split_kqv(projection, key_dim, value_dim, has_keys):
  """Split eq. (3)'s fused output along its last axis into (K, Q, V).

  With keys: K = [0:kh], Q = [kh:2kh], V = [2kh:2kh+vh]. Without keys (positional-only
  GSA): K = None, Q = [0:kh], V = [kh:kh+vh].
  """
  c = projection.shape[-1]
  if has_keys:
    assert c == 2 * key_dim + value_dim, (c, key_dim, value_dim)
    k = projection[..., 0:key_dim]
    q = projection[..., key_dim:2 * key_dim]
    v = projection[..., 2 * key_dim:2 * key_dim + value_dim]
  else:
    assert c == key_dim + value_dim, (c, key_dim, value_dim)
    k = None
    q = projection[..., 0:key_dim]
    v = projection[..., key_dim:key_dim + value_dim]
  return k, q, v


# ---------------------------------------------------------------------------------
# Eqs. (1), (4): global content attention
# ---------------------------------------------------------------------------------


def content_attention(q, k, v, *, key_softmax="pixels", query_softmax=False):
  """Eqs. (1)/(4): Y^C = Q (rho(K^T) V), per batch element and head.

  q, k: (b, h, w, n, kh); v: (b, h, w, n, vh). Returns (b, h, w, n, vh).

  * K_hat = softmax of K over all h*w pixels, separately for every key channel
    (rho applied to each row of K^T, i.e. sigma "along the spatial dimensions").
  * C[k, v] = sum_p K_hat[p, k] V[p, v]   (d_k global context vectors).
  * Y^C[p, v] = sum_k Q[p, k] C[k, v]     (queries are NOT normalised).

  Mutations (tests only): ``key_softmax="channels"`` normalises K over key channels at
  each pixel instead; ``key_softmax="none"`` skips it; ``query_softmax=True`` applies a
  softmax to each query over its key channels (the Chen/Shen et al. variant the paper
  explicitly drops).
  """
  b, h, w, n, kh = q.shape
  vh = v.shape[-1]
  npix = h * w
  out = np.zeros((b, h, w, n, vh), dtype=np.float64)
  for bi in range(b):
    for ni in range(n):
      # Flatten pixels p = x * w + y (the order does not matter for eq. 1).
      kmat = np.zeros((npix, kh))
      qmat = np.zeros((npix, kh))
      vmat = np.zeros((npix, vh))
      for px in range(h):
        for py in range(w):
          p = px * w + py
          kmat[p] = k[bi, px, py, ni]
          qmat[p] = q[bi, px, py, ni]
          vmat[p] = v[bi, px, py, ni]

      # K_hat = sigma(K): softmax along the spatial dimension, one key channel at a time.
      k_hat = np.zeros_like(kmat)
      if key_softmax == "pixels":
        for kc in range(kh):
          k_hat[:, kc] = softmax_1d(kmat[:, kc])
      elif key_softmax == "channels":  # mutation
        for p in range(npix):
          k_hat[p, :] = softmax_1d(kmat[p, :])
      elif key_softmax == "none":  # mutation
        k_hat[:] = kmat
      else:
        raise ValueError(key_softmax)

      if query_softmax:  # mutation
        for p in range(npix):
          qmat[p, :] = softmax_1d(qmat[p, :])

      # C[k, v] = sum_p K_hat[p, k] V[p, v]
      context = np.zeros((kh, vh))
      for kc in range(kh):
        for vc in range(vh):
          total = 0.0
          for p in range(npix):
            total += k_hat[p, kc] * vmat[p, vc]
          context[kc, vc] = total

      # Y^C[p, v] = sum_k Q[p, k] C[k, v]
      for px in range(h):
        for py in range(w):
          p = px * w + py
          for vc in range(vh):
            total = 0.0
            for kc in range(kh):
              total += qmat[p, kc] * context[kc, vc]
            out[bi, px, py, ni, vc] = total
  return out


# ---------------------------------------------------------------------------------
# Eqs. (2), (5)-(7): positional (relative, content-independent-key) axial attention
# ---------------------------------------------------------------------------------


def column_positional_attention(q, v, column_table, max_relative_shift, *, shift_sign=+1):
  """Eqs. (2), (5)-(7), column-only sub-layer.

  Y^H[x,y,n,v] = sum_{i : |i-x| <= L} (sum_k Q[x,y,n,k] R^c[i-x, k]) V[i,y,n,v].
  No softmax. q: (b,h,w,n,kh); v: (b,h,w,n,vh); column_table: (2M+1, kh).
  """
  b, h, w, n, _ = q.shape
  vh = v.shape[-1]
  lim = window_half_width(max_relative_shift)
  out = np.zeros((b, h, w, n, vh), dtype=np.float64)
  for bi in range(b):
    for ni in range(n):
      for px in range(h):
        for py in range(w):
          query = q[bi, px, py, ni]
          acc = np.zeros(vh)
          for i in range(h):  # key row along the same column py
            if abs(i - px) > lim:  # eq. (5): I = 0 outside the window
              continue
            s = float(np.dot(query, relative_embedding(column_table, i - px, shift_sign)))
            acc += s * v[bi, i, py, ni]
          out[bi, px, py, ni] = acc
  return out


def row_positional_attention(q, v, row_table, max_relative_shift, *, shift_sign=+1):
  """Row-only counterpart of eq. (7) (Appendix B: "symmetric").

  Y^W[x,y,n,v] = sum_{j : |j-y| <= L} (sum_k Q[x,y,n,k] R^r[j-y, k]) V[x,j,n,v].
  No softmax. row_table: (2M+1, kh).
  """
  b, h, w, n, _ = q.shape
  vh = v.shape[-1]
  lim = window_half_width(max_relative_shift)
  out = np.zeros((b, h, w, n, vh), dtype=np.float64)
  for bi in range(b):
    for ni in range(n):
      for px in range(h):
        for py in range(w):
          query = q[bi, px, py, ni]
          acc = np.zeros(vh)
          for j in range(w):  # key column along the same row px
            if abs(j - py) > lim:
              continue
            s = float(np.dot(query, relative_embedding(row_table, j - py, shift_sign)))
            acc += s * v[bi, px, j, ni]
          out[bi, px, py, ni] = acc
  return out


# ---------------------------------------------------------------------------------
# Batch normalisation between the column and row sub-layers (Fig. 1, Appendix B)
# ---------------------------------------------------------------------------------


def heads_to_channels(y):
  """(b,h,w,n,vh) -> (b,h,w,n*vh), channel = head * vh + v (head-major)."""
  b, h, w, n, vh = y.shape
  out = np.zeros((b, h, w, n * vh), dtype=np.float64)
  for ni in range(n):
    for vc in range(vh):
      out[..., ni * vh + vc] = y[..., ni, vc]
  return out


def channels_to_heads(y, num_heads):
  """Inverse of `heads_to_channels`."""
  b, h, w, f = y.shape
  vh = f // num_heads
  out = np.zeros((b, h, w, num_heads, vh), dtype=np.float64)
  for ni in range(num_heads):
    for vc in range(vh):
      out[..., ni, vc] = y[..., ni * vh + vc]
  return out


def batch_norm(y, bn, training):
  """Per-channel batch normalisation of y: (b,h,w,f).

  ``bn`` = dict(gamma, beta, moving_mean, moving_variance, epsilon).
  Inference: gamma * (y - moving_mean) / sqrt(moving_variance + eps) + beta.
  Training: the same with the batch mean and the biased batch variance over (b,h,w).
  """
  b, h, w, f = y.shape
  out = np.zeros_like(y)
  for c in range(f):
    vals = [y[bi, px, py, c] for bi in range(b) for px in range(h) for py in range(w)]
    if training:
      mean = sum(vals) / len(vals)
      var = sum((t - mean) ** 2 for t in vals) / len(vals)  # biased
    else:
      mean = float(bn["moving_mean"][c])
      var = float(bn["moving_variance"][c])
    scale = float(bn["gamma"][c]) / math.sqrt(var + float(bn["epsilon"]))
    for bi in range(b):
      for px in range(h):
        for py in range(w):
          out[bi, px, py, c] = scale * (y[bi, px, py, c] - mean) + float(bn["beta"][c])
  return out


# ---------------------------------------------------------------------------------
# The GSA module (Section 3.1, eq. 8) with the ablation switches of Section 4.4
# ---------------------------------------------------------------------------------


def normalize_queries(q, method, scale=None):
  """The queries `(b, h, w, n, kh)` normalised per pixel and head, loop by loop.

  None: unchanged. 'softmax': a softmax over each query's kh channels. 'l2': each query
  divided by sqrt(|q|^2 + 1e-6) and multiplied by its head's `scale[n]`.
  """
  if method is None:
    return q
  out = np.zeros(q.shape, dtype=np.float64)
  b, h, w, n, _ = q.shape
  for i0, i1, i2, head in itertools.product(range(b), range(h), range(w), range(n)):
    query = np.asarray(q[i0, i1, i2, head], dtype=np.float64)
    if method == "softmax":
      out[i0, i1, i2, head] = softmax_1d(query)
    elif method == "l2":
      out[i0, i1, i2, head] = query / np.sqrt(np.sum(query * query) + 1e-6) * scale[head]
    else:
      raise ValueError(method)
  return out


def gsa_reference(x, kqv_kernel, column_table, row_table, bn, *, num_heads, key_dim,
                  value_dim, max_relative_shift=None, use_content=True, use_column=True,
                  use_row=True, training=False, key_softmax="pixels", query_softmax=False,
                  positional_order="column_first", swap_tables=False, shift_sign=+1,
                  query_normalization=None, query_scale=None):
  """Global self-attention module: Y = Y^C + Y^W (eq. 8), restricted to enabled terms.

  * Y^C: global content attention (eqs. 1, 4), if ``use_content``.
  * Positional (eqs. 2, 5-7): column then BN then row when both are on; column-only
    returns Y^H; row-only applies the row sub-layer directly to V.
  Returns (b, h, w, num_heads * value_dim), float64.

  Mutations (tests only): key_softmax / query_softmax (see `content_attention`);
  ``positional_order="row_first"`` runs row, BN, column; ``swap_tables`` uses the row
  table along columns and vice versa; ``shift_sign=-1`` mirrors the relative shifts.

  ``query_normalization`` (not in the paper; see `normalize_queries`) normalises the
  queries of both branches first.
  """
  assert use_content or use_column or use_row
  proj = kqv_projection(x, kqv_kernel)
  assert proj.shape[3] == num_heads
  k, q, v = split_kqv(proj, key_dim, value_dim, has_keys=use_content)
  q = normalize_queries(q, query_normalization, query_scale)
  b, h, w = x.shape[:3]
  total = np.zeros((b, h, w, num_heads * value_dim), dtype=np.float64)

  if use_content:
    total += heads_to_channels(
        content_attention(q, k, v, key_softmax=key_softmax, query_softmax=query_softmax))

  col_t, row_t = (row_table, column_table) if swap_tables else (column_table, row_table)

  def column(values):
    return column_positional_attention(q, values, col_t, max_relative_shift,
                                       shift_sign=shift_sign)

  def row(values):
    return row_positional_attention(q, values, row_t, max_relative_shift,
                                    shift_sign=shift_sign)

  if use_column and use_row:
    first, second = (column, row) if positional_order == "column_first" else (row, column)
    y_first = heads_to_channels(first(v))
    y_first = channels_to_heads(batch_norm(y_first, bn, training), num_heads)
    total += heads_to_channels(second(y_first))
  elif use_column:
    total += heads_to_channels(column(v))
  elif use_row:
    total += heads_to_channels(row(v))
  return total


# ---------------------------------------------------------------------------------
# Table 2 baseline: axial attention with content + relative positional logits
# ---------------------------------------------------------------------------------


def axial_column_attention(q, k, v, column_table, max_relative_shift, *,
                           softmax_over="keys"):
  """Column sub-layer of the Table-2 axial baseline (Ramachandran et al.-style).

  logits[x,y,i] = q[x,y].k[i,y] + q[x,y].R^c[i-x] for |i-x| <= L (others excluded),
  a = softmax over i, out[x,y] = sum_i a[i] v[i,y].

  ``softmax_over="queries"`` is a mutation (normalise over the query index x instead).
  """
  b, h, w, n, _ = q.shape
  vh = v.shape[-1]
  lim = window_half_width(max_relative_shift)
  logits = np.full((b, n, w, h, h), -np.inf)  # [.., y, x (query), i (key)]
  for bi in range(b):
    for ni in range(n):
      for py in range(w):
        for px in range(h):
          for i in range(h):
            if abs(i - px) > lim:
              continue
            query = q[bi, px, py, ni]
            logits[bi, ni, py, px, i] = (
                float(np.dot(query, k[bi, i, py, ni])) +
                float(np.dot(query, relative_embedding(column_table, i - px))))
  out = np.zeros((b, h, w, n, vh))
  for bi in range(b):
    for ni in range(n):
      for py in range(w):
        weights = np.zeros((h, h))
        if softmax_over == "keys":
          for px in range(h):
            weights[px, :] = softmax_1d(logits[bi, ni, py, px, :])
        elif softmax_over == "queries":  # mutation
          for i in range(h):
            weights[:, i] = softmax_1d(logits[bi, ni, py, :, i])
        else:
          raise ValueError(softmax_over)
        for px in range(h):
          acc = np.zeros(vh)
          for i in range(h):
            if abs(i - px) > lim:
              continue
            acc += weights[px, i] * v[bi, i, py, ni]
          out[bi, px, py, ni] = acc
  return out


def axial_row_attention(q, k, v, row_table, max_relative_shift, *, softmax_over="keys"):
  """Row sub-layer of the Table-2 axial baseline.

  logits[x,y,j] = q[x,y].k[x,j] + q[x,y].R^r[j-y] for |j-y| <= L, softmax over j,
  out[x,y] = sum_j a[j] v[x,j].
  """
  b, h, w, n, _ = q.shape
  vh = v.shape[-1]
  lim = window_half_width(max_relative_shift)
  logits = np.full((b, n, h, w, w), -np.inf)  # [.., x, y (query), j (key)]
  for bi in range(b):
    for ni in range(n):
      for px in range(h):
        for py in range(w):
          for j in range(w):
            if abs(j - py) > lim:
              continue
            query = q[bi, px, py, ni]
            logits[bi, ni, px, py, j] = (
                float(np.dot(query, k[bi, px, j, ni])) +
                float(np.dot(query, relative_embedding(row_table, j - py))))
  out = np.zeros((b, h, w, n, vh))
  for bi in range(b):
    for ni in range(n):
      for px in range(h):
        weights = np.zeros((w, w))
        if softmax_over == "keys":
          for py in range(w):
            weights[py, :] = softmax_1d(logits[bi, ni, px, py, :])
        elif softmax_over == "queries":  # mutation
          for j in range(w):
            weights[:, j] = softmax_1d(logits[bi, ni, px, :, j])
        else:
          raise ValueError(softmax_over)
        for py in range(w):
          acc = np.zeros(vh)
          for j in range(w):
            if abs(j - py) > lim:
              continue
            acc += weights[py, j] * v[bi, px, j, ni]
          out[bi, px, py, ni] = acc
  return out


def axial_reference(x, kqv_kernel, column_table, row_table, bn, *, num_heads, key_dim,
                    value_dim, max_relative_shift=None, training=False,
                    softmax_over="keys"):
  """Table 2's "axial content and positional attention" module.

  Column attention (content + relative position logits, softmax over keys), BN over
  the (head-major) output channels, then row attention whose keys/queries are the
  original K, Q and whose values are the normalised column output.
  Returns (b, h, w, num_heads * value_dim), float64.
  """
  proj = kqv_projection(x, kqv_kernel)
  assert proj.shape[3] == num_heads
  k, q, v = split_kqv(proj, key_dim, value_dim, has_keys=True)
  y_col = axial_column_attention(q, k, v, column_table, max_relative_shift,
                                 softmax_over=softmax_over)
  y_col = channels_to_heads(batch_norm(heads_to_channels(y_col), bn, training), num_heads)
  y_row = axial_row_attention(q, k, y_col, row_table, max_relative_shift,
                              softmax_over=softmax_over)
  return heads_to_channels(y_row)


# ---------------------------------------------------------------------------------
# Table 3 baseline: local (stand-alone) self-attention, Ramachandran et al. 2019
# ---------------------------------------------------------------------------------


def local_reference(x, kqv_kernel, row_offset_table, column_offset_table, *, num_heads,
                    key_dim, value_dim, kernel_size, mask_padding=True):
  """Stand-alone self-attention over each pixel's kernel_size x kernel_size window.

  y[i,j] = sum_{(a,b) in N(i,j)} softmax_ab(q[i,j].k[a,b] + q[i,j].r[a-i,b-j]) v[a,b],
  per head, where N(i, j) = {(a, b): |a - i| <= R, |b - j| <= R}, R = kernel_size // 2,
  keeps only the pixels inside the image (padding takes no weight), and
  r[a-i, b-j] = concat(row_offset_table[a-i+R], column_offset_table[b-j+R]): the row
  offset's embedding meets the first half of the query's channels, the column offset's
  the second half. Both tables are shared by the heads.

  ``mask_padding=False`` is a mutation (tests only): neighbours outside the image count
  as zero keys and values (zero padding) and still take softmax weight.
  Returns (b, h, w, num_heads * value_dim), float64.
  """
  proj = kqv_projection(x, kqv_kernel)
  k, q, v = split_kqv(proj, key_dim, value_dim, has_keys=True)
  row_offset_table = np.asarray(row_offset_table, dtype=np.float64)
  column_offset_table = np.asarray(column_offset_table, dtype=np.float64)
  b, h, w, n, _ = q.shape
  reach = kernel_size // 2
  half = key_dim // 2
  out = np.zeros((b, h, w, n, value_dim))
  for bi in range(b):
    for ni in range(n):
      for i in range(h):
        for j in range(w):
          query = q[bi, i, j, ni]
          logits, neighbours = [], []
          for a in range(i - reach, i + reach + 1):
            for bb in range(j - reach, j + reach + 1):
              inside = 0 <= a < h and 0 <= bb < w
              if not inside and mask_padding:
                continue
              key = k[bi, a, bb, ni] if inside else np.zeros(key_dim)
              value = v[bi, a, bb, ni] if inside else np.zeros(value_dim)
              relative = np.concatenate([row_offset_table[a - i + reach],
                                         column_offset_table[bb - j + reach]])
              assert relative.shape == (key_dim,) and half * 2 == key_dim
              logits.append(float(np.dot(query, key)) + float(np.dot(query, relative)))
              neighbours.append(value)
          weights = softmax_1d(logits)
          acc = np.zeros(value_dim)
          for weight, value in zip(weights, neighbours):
            acc += weight * value
          out[bi, i, j, ni] = acc
  return heads_to_channels(out)
