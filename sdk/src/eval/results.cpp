#include "llm/eval/results.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

namespace llm {

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  // Shortest digits that round-trip, then Python's layout: exponent form below 1e-4 or from 1e16.
  char digits[32];
  int precision = 1;
  for (; precision <= 17; ++precision) {
    std::snprintf(digits, sizeof(digits), "%.*e", precision - 1, value);
    if (std::strtod(digits, nullptr) == value) break;
  }
  std::string text(digits);
  const auto e = text.find('e');
  std::string mantissa = text.substr(0, e);
  const int exponent = std::stoi(text.substr(e + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string significant;
  for (const char c : mantissa) {
    if (c != '.') significant += c;
  }
  while (significant.size() > 1 && significant.back() == '0') significant.pop_back();
  std::string out;
  if (exponent < -4 || exponent >= 16) {
    out = significant.substr(0, 1);
    if (significant.size() > 1) out += "." + significant.substr(1);
    char exp[16];
    std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp;
  } else if (exponent < 0) {
    out = "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + significant;
  } else {
    const auto integer_digits = static_cast<std::size_t>(exponent) + 1;
    if (significant.size() <= integer_digits) {
      out = significant + std::string(integer_digits - significant.size(), '0') + ".0";
    } else {
      out = significant.substr(0, integer_digits) + "." + significant.substr(integer_digits);
    }
  }
  return negative ? "-" + out : out;
}

std::string python_json_dumps(const OrderedJson& value) {
  switch (value.type()) {
    case OrderedJson::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first) out += ", ";
        first = false;
        out += OrderedJson(key).dump(-1, ' ', true) + ": " + python_json_dumps(item);
      }
      return out + "}";
    }
    case OrderedJson::value_t::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (i > 0) out += ", ";
        out += python_json_dumps(value[i]);
      }
      return out + "]";
    }
    case OrderedJson::value_t::number_float:
      return python_float_repr(value.get<double>());
    default:
      return value.dump(-1, ' ', true);
  }
}

}  // namespace llm
