#include "kernels/broadcast.h"

#include "engine/error.h"

#include <algorithm>

namespace ffr {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    FFR_CHECK(da == db || da == 1 || db == 1, "shapes ", shape_str(a), " and ", shape_str(b),
              " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {
void fill_strides(const Shape& out, const Shape& in, int64_t* strides) {
  const size_t offset = out.size() - in.size();
  int64_t stride = 1;
  for (size_t i = out.size(); i-- > 0;) {
    const int64_t d = i < offset ? 1 : in[i - offset];
    strides[i] = (d == 1) ? 0 : stride;
    stride *= d;
  }
}
}  // namespace

BroadcastIndexer make_broadcast_indexer(const Shape& out, const Shape& a, const Shape& b) {
  FFR_CHECK(out.size() <= size_t(kMaxBroadcastDims), "broadcasting supports up to ", kMaxBroadcastDims,
            " dimensions, got ", shape_str(out));
  FFR_CHECK(a.size() <= out.size() && b.size() <= out.size(), "bad broadcast ", shape_str(a), ", ",
            shape_str(b), " -> ", shape_str(out));
  BroadcastIndexer idx;
  idx.ndim = int(out.size());
  for (size_t i = 0; i < out.size(); ++i) idx.sizes[i] = out[i];
  fill_strides(out, a, idx.a_strides);
  fill_strides(out, b, idx.b_strides);
  return idx;
}

}  // namespace ffr
