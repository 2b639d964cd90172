#pragma once
// Small helpers for the hand-written SVG charts (training loss, report comparison): text escaping,
// locale-independent numbers and "nice" axis ticks. No dependency beyond the standard library.
#include <string>
#include <string_view>
#include <vector>

#include "llm/export.hpp"

namespace llm::svg {

// Escapes text for an XML text node or a double-quoted attribute value.
LLM_API std::string escape(std::string_view text);

// Shortest decimal that round-trips at `significant` digits ("%.*g", C locale, no "-0").
LLM_API std::string number(double value, int significant = 6);

// A linear map from [lo, hi] onto pixels [pixel_lo, pixel_hi] (pixel_hi < pixel_lo for a y axis).
struct LLM_API Scale {
  double lo = 0;
  double hi = 1;
  double pixel_lo = 0;
  double pixel_hi = 1;
  double operator()(double value) const;
};

// Round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi] with about
// `target` intervals; the first tick is <= lo and the last >= hi, so they also widen the axis.
LLM_API std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// "<svg ...>" opening with the namespace, size and a white background; close with "</svg>\n".
LLM_API std::string open_document(int width, int height, std::string_view title);

}  // namespace llm::svg
