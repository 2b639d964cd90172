#pragma once
// lm-eval's results JSON: {"results": {task: {metric, metric_stderr}}, "versions", "config"},
// floats written as Python's repr (shortest round trip, 0.0 not 0, NaN bare).
#include <string>

#include "llm/export.hpp"
#include "llm/json_file.hpp"

namespace llm {

// Results keep the harness's key order (metric, then its _stderr), so they use ordered JSON.
using OrderedJson = nlohmann::ordered_json;

// json.dumps(value) on one line with Python's separators (", " and ": ").
LLM_API std::string python_json_dumps(const OrderedJson& value);
// Python repr of a float.
LLM_API std::string python_float_repr(double value);

}  // namespace llm
