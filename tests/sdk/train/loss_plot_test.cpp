#include "llm/train/loss_plot.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "llm/train/metrics.hpp"
#include "support/test_support.hpp"
#include "support/xml_parse.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::parse_xml;
using llm::test::read_file_bytes;
using llm::test::TempDir;
using llm::test::XmlElement;

struct Pair {
  double first = 0;
  double second = 0;
};

// "a,b c,d ..." (the points and data-points attributes).
std::vector<Pair> pairs(const std::string& text) {
  std::vector<Pair> out;
  std::istringstream in(text);
  std::string item;
  while (in >> item) {
    const auto comma = item.find(',');
    EXPECT_NE(comma, std::string::npos) << item;
    out.push_back({std::stod(item.substr(0, comma)), std::stod(item.substr(comma + 1))});
  }
  return out;
}

// A run as the trainer logs it: the initial validation at step 0, then 20 steps with a loss each,
// validation every 5, the learning rate warming up and decaying.
std::vector<llm::LossPoint> logged_run() {
  std::vector<llm::LossPoint> points;
  points.push_back({0, std::nullopt, 3.25, 2e-4});
  for (int64_t step = 1; step <= 20; ++step) {
    llm::LossPoint p;
    p.step = step;
    p.loss = 3.0 / (1.0 + 0.25 * static_cast<double>(step)) + 0.01 * static_cast<double>(step % 3);
    if (step % 5 == 0) p.val_loss = 3.1 / (1.0 + 0.2 * static_cast<double>(step));
    p.lr = step <= 4 ? 2.5e-4 * static_cast<double>(step) : 1e-3 * (1.0 - (step - 4) / 20.0);
    points.push_back(p);
  }
  return points;
}

const XmlElement* only(const XmlElement& root, const std::string& name, const std::string& cls) {
  const auto found = root.find_all(name, cls);
  EXPECT_EQ(found.size(), 1u) << name << "." << cls;
  return found.empty() ? nullptr : found.front();
}

// The drawn polyline is the logged series: same points in order, x growing with the step, and y an
// affine, decreasing function of the value (one scale for the whole line).
void expect_series(const XmlElement& polyline, const std::vector<Pair>& logged) {
  const auto data = pairs(polyline.attribute("data-points"));
  const auto pixels = pairs(polyline.attribute("points"));
  ASSERT_EQ(data.size(), logged.size());
  ASSERT_EQ(pixels.size(), logged.size());
  for (size_t i = 0; i < logged.size(); ++i) {
    EXPECT_EQ(data[i].first, logged[i].first) << i;
    EXPECT_NEAR(data[i].second, logged[i].second, 1e-7 * std::abs(logged[i].second)) << i;
    if (i > 0) {
      EXPECT_GT(pixels[i].first, pixels[i - 1].first) << i;
    }
  }
  // Slope between the extreme values; every point must lie on that line (pixels printed to 7
  // significant digits of values below 1000: within 1e-3 px).
  size_t lo = 0, hi = 0;
  for (size_t i = 0; i < logged.size(); ++i) {
    if (logged[i].second < logged[lo].second) lo = i;
    if (logged[i].second > logged[hi].second) hi = i;
  }
  ASSERT_GT(logged[hi].second, logged[lo].second);
  const double slope =
      (pixels[hi].second - pixels[lo].second) / (logged[hi].second - logged[lo].second);
  EXPECT_LT(slope, 0) << "larger values are drawn higher";
  for (size_t i = 0; i < logged.size(); ++i) {
    const double expected = pixels[lo].second + slope * (logged[i].second - logged[lo].second);
    EXPECT_NEAR(pixels[i].second, expected, 2e-3) << i;
  }
}

TEST(LossPlot, SvgIsWellFormedAndDrawsEveryLoggedPoint) {
  const auto points = logged_run();
  const std::string svg = llm::render_loss_svg(points);
  XmlElement root;
  ASSERT_NO_THROW(root = parse_xml(svg)) << svg;
  EXPECT_EQ(root.name, "svg");
  EXPECT_EQ(root.attribute("xmlns"), "http://www.w3.org/2000/svg");

  std::vector<Pair> train, val, lr;
  for (const auto& p : points) {
    if (p.loss) train.push_back({static_cast<double>(p.step), *p.loss});
    if (p.val_loss) val.push_back({static_cast<double>(p.step), *p.val_loss});
    lr.push_back({static_cast<double>(p.step), p.lr});
  }
  const auto* train_line = only(root, "polyline", "train-loss");
  const auto* val_line = only(root, "polyline", "val-loss");
  const auto* lr_line = only(root, "polyline", "lr");
  ASSERT_TRUE(train_line && val_line && lr_line);
  expect_series(*train_line, train);
  expect_series(*val_line, val);
  expect_series(*lr_line, lr);
  // Training and validation loss share the left axis: the same value sits at the same height.
  const auto train_pixels = pairs(train_line->attribute("points"));
  const auto val_pixels = pairs(val_line->attribute("points"));
  const double train_slope =
      (train_pixels[0].second - train_pixels[19].second) / (train[0].second - train[19].second);
  const double val_offset = val_pixels[1].second - train_pixels[4].second;
  EXPECT_NEAR(val_offset, train_slope * (val[1].second - train[4].second), 2e-3);
  // One marker with a tooltip per validation.
  const auto markers = root.find_all("circle", "val-point");
  ASSERT_EQ(markers.size(), val.size());
  EXPECT_NE(markers.back()->find_all("title").at(0)->text.find("step 20"), std::string::npos);
}

TEST(LossPlot, NonFiniteLossesAreLeftOutAndAnEmptyRunStillRenders) {
  auto points = logged_run();
  points[3].loss = std::nan("");
  points[5].loss = INFINITY;
  const auto root = parse_xml(llm::render_loss_svg(points));
  const auto* train_line = only(root, "polyline", "train-loss");
  ASSERT_TRUE(train_line);
  EXPECT_EQ(pairs(train_line->attribute("data-points")).size(), 18u);

  const auto empty = parse_xml(llm::render_loss_svg({}));
  EXPECT_EQ(empty.name, "svg");
}

TEST(XmlReader, RejectsWhatIsNotWellFormed) {
  for (const char* bad :
       {"<svg><g></svg>", "<svg a=\"1\" a=\"2\"/>", "<svg>&nbsp;</svg>", "<svg a=\"<\"/>",
        "<svg>x & y</svg>", "<svg/><svg/>", "<svg a=1/>", "<svg><text>open</svg>", "text<svg/>"}) {
    EXPECT_THROW(parse_xml(bad), std::runtime_error) << bad;
  }
  const auto ok =
      parse_xml("<?xml version=\"1.0\"?>\n<!-- c --><svg a='&lt;&#65;'>t&amp;<g/></svg>\n");
  EXPECT_EQ(ok.attribute("a"), "<A");
  EXPECT_EQ(ok.text, "t&");
}

llm::StepMetrics metrics_row(int64_t step, bool validate) {
  llm::StepMetrics m;
  m.step = step;
  m.loss = 2.0 - 0.1 * static_cast<double>(step);
  if (validate) m.val_loss = 2.5 - 0.1 * static_cast<double>(step);
  m.lr = 1e-3;
  return m;
}

std::vector<Pair> plotted_train_loss(const fs::path& svg) {
  const auto root = parse_xml(read_file_bytes(svg));
  const auto lines = root.find_all("polyline", "train-loss");
  EXPECT_EQ(lines.size(), 1u);
  return lines.empty() ? std::vector<Pair>{} : pairs(lines[0]->attribute("data-points"));
}

// loss.svg appears at the first validation row, is rewritten at each one and, by finish(), holds
// every row; a resume keeps the rows it keeps in metrics.jsonl, so the picture is the whole run.
TEST(MetricsWriter, LossSvgIsRewrittenAtValidationAndCompleteAfterFinish) {
  TempDir dir;
  const fs::path svg = dir.path() / "loss.svg";
  {
    llm::MetricsWriter writer(dir.path(), std::nullopt);
    writer.write(metrics_row(1, false));
    writer.write(metrics_row(2, false));
    EXPECT_FALSE(fs::exists(svg));
    writer.write(metrics_row(3, true));
    EXPECT_EQ(plotted_train_loss(svg).size(), 3u);
    writer.write(metrics_row(4, false));
    EXPECT_EQ(plotted_train_loss(svg).size(), 3u) << "rewritten at validation rows only";
    writer.finish();
    EXPECT_EQ(plotted_train_loss(svg).size(), 4u);
  }
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().rfind(".loss.svg", 0), std::string::npos)
        << "temporary file left: " << entry.path();
  }
  {
    llm::MetricsWriter resumed(dir.path(), int64_t{3});  // checkpoint at step 3: row 4 dropped
    resumed.write(metrics_row(4, false));
    resumed.write(metrics_row(5, false));
    resumed.finish();
  }
  const auto plotted = plotted_train_loss(svg);
  ASSERT_EQ(plotted.size(), 5u);
  for (size_t i = 0; i < plotted.size(); ++i) {
    EXPECT_EQ(plotted[i].first, static_cast<double>(i + 1));
    EXPECT_NEAR(plotted[i].second, *metrics_row(static_cast<int64_t>(i + 1), false).loss, 1e-9);
  }
}

}  // namespace
