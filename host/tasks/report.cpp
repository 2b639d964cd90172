// --task report: result files side by side; a difference within the combined standard error
// (sqrt(se_a² + se_b²)) is "statistically indistinguishable", as the tutorial reads them.
#include <cmath>
#include <fstream>
#include <iomanip>
#include <optional>
#include <sstream>

#include "llm/atomic_file.hpp"
#include "llm/error.hpp"
#include "llm/eval/results.hpp"
#include "llm/svg.hpp"
#include "report_chart.hpp"
#include "task.hpp"

// A namespace of its own: the tasks are compiled together in unity builds.
namespace llmhost::report_task {
namespace {

void declare(po::options_description& o) {
  o.add_options()(
      "inputs", po::value<std::string>()->required(),
      "comma-separated results files from --task evaluate (the first is the baseline)")  //
      ("svg", po::value<std::string>(),
       "also write the comparison as an SVG bar chart to this file (atomically)");
}

using Cell = ReportCell;
using Row = ReportRow;

llm::OrderedJson read_results(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw llm::UserError("--inputs: cannot read '" + path + "'");
  auto json = llm::OrderedJson::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("results") ||
      !json["results"].is_object()) {
    throw llm::UserError(path + ": not a results file (expected a JSON object with \"results\")");
  }
  return json;
}

bool is_stderr_key(const std::string& key) {
  return key.size() > 7 && key.compare(key.size() - 7, 7, "_stderr") == 0;
}

std::vector<Row> collect_rows(const std::vector<llm::OrderedJson>& files,
                              const std::vector<std::string>& paths) {
  std::vector<Row> rows;
  auto find_row = [&](const std::string& task, const std::string& metric) -> Row& {
    for (auto& r : rows) {
      if (r.task == task && r.metric == metric) return r;
    }
    rows.push_back({task, metric, std::vector<Cell>(files.size())});
    return rows.back();
  };
  for (std::size_t f = 0; f < files.size(); ++f) {
    for (const auto& [task, metrics] : files[f]["results"].items()) {
      if (!metrics.is_object())
        throw llm::UserError(paths[f] + ": results." + task + " is not an object");
      for (const auto& [metric, value] : metrics.items()) {
        if (is_stderr_key(metric)) continue;
        if (!value.is_number()) {
          throw llm::UserError(paths[f] + ": results." + task + "." + metric + " is not a number");
        }
        Cell& cell = find_row(task, metric).cells[f];
        cell.present = true;
        cell.value = value.get<double>();
        const auto se = metrics.find(metric + "_stderr");
        if (se != metrics.end() && se->is_number()) cell.stderr_value = se->get<double>();
      }
    }
  }
  return rows;
}

// Compares a file's cell with the baseline's: "", "statistically indistinguishable", "different".
std::string verdict(const Cell& base, const Cell& other) {
  if (!base.present || !other.present) return "";
  if (!base.stderr_value || !other.stderr_value) return "no stderr";
  const double combined = std::sqrt(*base.stderr_value * *base.stderr_value +
                                    *other.stderr_value * *other.stderr_value);
  return std::abs(other.value - base.value) <= combined ? "statistically indistinguishable"
                                                        : "different";
}

std::string format_cell(const Cell& cell) {
  if (!cell.present) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(4) << cell.value;
  if (cell.stderr_value) s << " ± " << std::setprecision(4) << *cell.stderr_value;
  return s.str();
}

int run(TaskContext& ctx) {
  std::vector<std::string> paths;
  std::stringstream list(ctx.get<std::string>("inputs"));
  std::string item;
  while (std::getline(list, item, ',')) {
    if (!item.empty()) paths.push_back(item);
  }
  if (paths.empty()) throw llm::UserError("--inputs: expected comma-separated results files");
  std::vector<llm::OrderedJson> files;
  for (const auto& p : paths) files.push_back(read_results(p));
  const auto rows = collect_rows(files, paths);

  // Header: task, metric, one column per file, then one comparison column per later file.
  std::vector<std::string> header{"Task", "Metric"};
  for (const auto& p : paths) header.push_back(p);
  for (std::size_t f = 1; f < paths.size(); ++f) header.push_back(paths[f] + " vs " + paths[0]);
  std::vector<std::vector<std::string>> table;
  for (const auto& r : rows) {
    std::vector<std::string> line{r.task, r.metric};
    for (const auto& c : r.cells) line.push_back(format_cell(c));
    for (std::size_t f = 1; f < r.cells.size(); ++f)
      line.push_back(verdict(r.cells[0], r.cells[f]));
    table.push_back(line);
  }

  if (ctx.has("svg")) {
    std::vector<std::vector<std::string>> verdicts;
    for (const auto& r : rows) {
      verdicts.emplace_back();
      for (std::size_t f = 1; f < r.cells.size(); ++f)
        verdicts.back().push_back(verdict(r.cells[0], r.cells[f]));
    }
    try {
      llm::write_file_atomic(ctx.get<std::string>("svg"), render_report_svg(paths, rows, verdicts));
    } catch (const llm::UserError& e) {
      throw llm::UserError(std::string("--svg: ") + e.what());
    }
  }

  const std::string format = ctx.get<std::string>("format");
  auto& out = ctx.out();
  if (format == "json") {
    llm::OrderedJson json_rows = llm::OrderedJson::array();
    for (const auto& r : rows) {
      llm::OrderedJson row{{"task", r.task}, {"metric", r.metric}};
      llm::OrderedJson values = llm::OrderedJson::array();
      for (const auto& c : r.cells) {
        values.push_back(
            c.present
                ? llm::OrderedJson{{"value", c.value},
                                   {"stderr", c.stderr_value ? llm::OrderedJson(*c.stderr_value)
                                                             : llm::OrderedJson()}}
                : llm::OrderedJson());
      }
      row["values"] = values;
      llm::OrderedJson verdicts = llm::OrderedJson::array();
      for (std::size_t f = 1; f < r.cells.size(); ++f)
        verdicts.push_back(verdict(r.cells[0], r.cells[f]));
      row["comparisons"] = verdicts;
      json_rows.push_back(row);
    }
    out << llm::python_json_dumps(llm::OrderedJson{{"inputs", paths}, {"rows", json_rows}}) << "\n";
  } else if (format == "html") {
    out << "<table>\n<tr>";
    for (const auto& h : header) out << "<th>" << llm::svg::escape(h) << "</th>";
    out << "</tr>\n";
    for (const auto& line : table) {
      out << "<tr>";
      for (const auto& cell : line) out << "<td>" << llm::svg::escape(cell) << "</td>";
      out << "</tr>\n";
    }
    out << "</table>\n";
  } else {
    out << "|";
    for (const auto& h : header) out << " " << h << " |";
    out << "\n|";
    for (std::size_t i = 0; i < header.size(); ++i) out << (i < 2 ? "---|" : "---:|");
    out << "\n";
    for (const auto& line : table) {
      out << "|";
      for (const auto& cell : line) out << " " << cell << " |";
      out << "\n";
    }
  }
  return llm::kExitOk;
}

const bool registered = register_task({"report",
                                       "side-by-side table of results files, marking differences "
                                       "within the combined standard error",
                                       declare,
                                       run,
                                       {"text", "markdown", "html", "json"}});

}  // namespace
}  // namespace llmhost::report_task
