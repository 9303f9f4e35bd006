#include "observe/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>
#include <optional>

namespace sluice {
namespace {

using ojson = nlohmann::ordered_json;

// ---- report.json ------------------------------------------------------------

std::string IsoUtc(uint64_t unix_micros) {
  if (unix_micros == 0) return "";
  const time_t secs = static_cast<time_t>(unix_micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// JSON has no NaN or infinity: those become null.
ojson Number(double v) { return std::isfinite(v) ? ojson(v) : ojson(nullptr); }

std::string BaseName(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A webhook URL often carries a token in its path or query: the report keeps
// only scheme, host and port.
std::string RedactUrl(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "…";
  const size_t path_begin = url.find_first_of("/?#", scheme_end + 3);
  std::string origin = url.substr(0, path_begin);
  if (const size_t at = origin.rfind('@'); at != std::string::npos && at > scheme_end) {
    origin = origin.substr(0, scheme_end + 3) + origin.substr(at + 1);
  }
  return path_begin == std::string::npos ? origin : origin + "/…";
}

ojson MonitoringJson(const MonitoringSpec& m) {
  ojson j;
  j["log_format"] = m.log_format == LogFormat::kJson ? "json" : "text";
  j["metrics_addr"] = m.metrics_addr.empty() ? ojson(nullptr) : ojson(m.metrics_addr);
  j["progress"] = m.progress == ProgressMode::kAuto ? "auto" : m.progress == ProgressMode::kPlain ? "plain" : "off";
  j["interval_ms"] = m.interval_ms;
  j["alerts"] = ojson::array();
  for (const AlertSpec& a : m.alerts) {
    ojson r;
    r["name"] = a.name;
    r["when"] = AlertCondition(a);
    r["for_ms"] = a.for_ms;
    r["action"] = AlertActionName(a.action);
    if (!a.url.empty()) r["url"] = RedactUrl(a.url);
    if (!a.column.empty()) r["column"] = a.column;
    j["alerts"].push_back(std::move(r));
  }
  return j;
}

ojson HistogramJson(const HistogramData& h) {
  ojson j;
  j["p50"] = Number(h.Quantile(0.5));
  j["p90"] = Number(h.Quantile(0.9));
  j["p99"] = Number(h.Quantile(0.99));
  j["bounds"] = h.bounds;
  j["counts"] = h.counts;
  return j;
}

}  // namespace

nlohmann::ordered_json BuildReportJson(const ReportInput& in) {
  ojson r;
  r["sluice_report"] = 1;

  ojson job;
  std::string name = in.job_name;
  if (name.empty() && in.spec != nullptr) name = JobName(*in.spec);
  job["name"] = name;
  std::string spec_json = in.fingerprint != nullptr ? in.fingerprint->spec_json : "";
  if (spec_json.empty() && in.spec != nullptr) spec_json = in.spec->ToCanonicalJson();
  job["spec"] = spec_json.empty() ? ojson(nullptr) : ojson::parse(spec_json, nullptr, /*allow_exceptions=*/false);
  if (job["spec"].is_discarded()) job["spec"] = nullptr;
  job["monitoring"] = in.spec != nullptr ? MonitoringJson(in.spec->monitoring) : ojson(nullptr);
  job["fingerprint"] = in.fingerprint != nullptr ? in.fingerprint->Digest() : "";
  job["model_sha256"] = in.fingerprint != nullptr ? in.fingerprint->model_sha256 : "";
  job["started"] = IsoUtc(in.started_unix_micros);
  job["finished"] = IsoUtc(in.finished_unix_micros);
  job["seconds"] = in.report != nullptr ? in.report->seconds : in.metrics.elapsed_seconds;
  job["exit_code"] = in.report != nullptr ? static_cast<int>(in.report->exit_code) : 0;
  job["error"] = in.report != nullptr ? in.report->error : "";
  r["job"] = std::move(job);

  ojson totals;
  int64_t rows_in = 0, rows_out = 0, rows_rejected = 0, rows_filtered = 0, rows_sampled_out = 0, parts = 0;
  for (const UnitMarker& m : in.markers) {
    rows_in += m.rows_in;
    rows_out += m.rows_out;
    rows_rejected += m.rows_rejected;
    rows_filtered += m.rows_filtered;
    rows_sampled_out += m.rows_sampled_out;
    parts += static_cast<int64_t>(m.files.size());
  }
  totals["rows_in"] = rows_in;
  totals["rows_out"] = rows_out;
  totals["rows_rejected"] = rows_rejected;
  totals["rows_filtered"] = rows_filtered;
  totals["rows_sampled_out"] = rows_sampled_out;
  totals["units_total"] = in.report != nullptr ? in.report->units_total : in.metrics.units_total;
  totals["units_done"] = in.report != nullptr ? in.report->units_done : in.metrics.units_done;
  totals["units_failed"] = in.report != nullptr ? in.report->units_failed : in.metrics.units_failed;
  totals["units_skipped"] = in.report != nullptr ? in.report->units_skipped : 0;
  totals["parts"] = parts;
  r["totals"] = std::move(totals);

  r["units"] = ojson::array();
  for (const UnitMarker& m : in.markers) {
    ojson u;
    u["id"] = m.unit_id;
    u["input"] = m.input;
    u["rows_in"] = m.rows_in;
    u["rows_out"] = m.rows_out;
    u["rows_rejected"] = m.rows_rejected;
    u["rows_filtered"] = m.rows_filtered;
    u["files"] = ojson::array();
    for (const PartFile& f : m.files) u["files"].push_back(f.path);
    const auto seconds = in.unit_seconds.find(m.unit_id);
    u["seconds"] = seconds == in.unit_seconds.end() ? ojson(nullptr) : Number(seconds->second);
    r["units"].push_back(std::move(u));
  }

  r["stages"] = ojson::object();
  for (size_t s = 0; s < kStageCount; ++s) {
    const HistogramData& h = in.metrics.stage_seconds[s];
    ojson st;
    st["seconds"] = Number(h.sum);
    st["count"] = h.count;
    st["p50"] = Number(h.Quantile(0.5));
    st["p90"] = Number(h.Quantile(0.9));
    st["p99"] = Number(h.Quantile(0.99));
    r["stages"][std::string(StageName(static_cast<Stage>(s)))] = std::move(st);
  }

  r["latency"] = {{"batch", HistogramJson(in.metrics.batch_seconds)}};

  r["throughput"] = ojson::array();
  for (const TimelinePoint& p : in.timeline) {
    r["throughput"].push_back({{"seconds", Number(p.seconds)},
                               {"rows_in", p.rows_in},
                               {"rows_out", p.rows_out},
                               {"rows_per_sec", Number(p.rows_per_sec)},
                               {"rss_bytes", p.rss_bytes}});
  }

  const HistogramData& scores = in.metrics.scores;
  if (in.metrics.score_column.empty()) {
    r["predictions"] = nullptr;
  } else {
    ojson p;
    p["column"] = in.metrics.score_column;
    p["bounds"] = scores.bounds;
    p["counts"] = scores.counts;
    p["mean"] = scores.count > 0 ? Number(scores.Mean()) : ojson(nullptr);
    p["count"] = scores.count;
    const ScoreReference* ref = in.score_reference;
    const bool comparable = ref != nullptr && ref->column == in.metrics.score_column &&
                            ref->fractions.size() == scores.counts.size();
    p["reference"] = comparable ? ojson(ref->fractions) : ojson(nullptr);
    p["psi"] = comparable && scores.count > 0 ? Number(PopulationStabilityIndex(scores.counts, ref->fractions))
                                              : ojson(nullptr);
    r["predictions"] = std::move(p);
  }

  const std::map<std::string, int64_t>& by_reason =
      in.report != nullptr && !in.report->rejects_by_reason.empty() ? in.report->rejects_by_reason
                                                                    : in.metrics.rejects_by_reason;
  r["rejects"] = {{"by_reason", by_reason}};

  r["alerts"] = ojson::array();
  for (const AlertEvent& e : in.alerts) r["alerts"].push_back(ojson::parse(e.ToJson().dump()));

  ojson res;
  res["peak_rss_bytes"] = std::max(in.metrics.peak_rss_bytes, in.report != nullptr ? in.report->peak_rss_bytes : 0);
  res["cpu_seconds"] = Number(in.metrics.cpu_seconds);
  res["workers"] = in.report != nullptr ? in.report->workers : 1;
  res["model_threads"] = in.report != nullptr ? in.report->model_threads : 1;
  res["model_loads"] = in.report != nullptr ? in.report->model_loads : in.metrics.model_loads;
  res["model_evictions"] = in.report != nullptr ? in.report->model_evictions : in.metrics.model_evictions;
  res["retries"] = in.report != nullptr && !in.report->retries.empty() ? in.report->retries : in.metrics.retries;
  r["resources"] = std::move(res);
  return r;
}

// ---- report.html ------------------------------------------------------------

namespace {

std::string Esc(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// 1234567 -> "1,234,567".
std::string Grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// 1234567 -> "1.23M": axis ticks and bar values.
std::string Short(double v) {
  const double a = std::fabs(v);
  if (a >= 1e9) return fmt::format("{:.3g}G", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.3g}M", v / 1e6);
  if (a >= 1e3) return fmt::format("{:.3g}k", v / 1e3);
  return fmt::format("{:.3g}", v);
}

std::string Seconds(double s) {
  if (!std::isfinite(s)) return "–";
  if (s == 0) return "0";
  if (s < 1e-3) return fmt::format("{:.0f} µs", s * 1e6);
  if (s < 1) return fmt::format("{:.3g} ms", s * 1e3);
  if (s < 120) return fmt::format("{:.3g} s", s);
  const int64_t total = static_cast<int64_t>(std::llround(s));
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, static_cast<int>(total % 60));
  return fmt::format("{}h{:02d}m", total / 3600, static_cast<int>(total / 60 % 60));
}

std::string Bytes(double b) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t u = 0;
  while (b >= 1024 && u + 1 < std::size(kUnits)) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.3g} {}", b, kUnits[u]);
}

// The value at `key`, or null when `j` is not an object or has no such key
// (operator[] on a const json must not be asked for a missing key).
const ojson& G(const ojson& j, const char* key) {
  static const ojson kNull;
  if (!j.is_object()) return kNull;
  const auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

double Num(const ojson& j) { return j.is_number() ? j.get<double>() : 0; }
int64_t Int(const ojson& j) { return j.is_number() ? j.get<int64_t>() : 0; }
std::string Str(const ojson& j) { return j.is_string() ? j.get<std::string>() : (j.is_null() ? "" : j.dump()); }

// ---- charts: inline SVG ------------------------------------------------------

constexpr int kChartWidth = 720;
constexpr int kChartHeight = 260;
constexpr int kLeft = 64, kRight = 16, kTop = 16, kBottom = 44;

std::string Px(double v) { return fmt::format("{:.1f}", v); }

std::string OpenSvg(const std::string& id, int height, const std::string& title) {
  return fmt::format(
      "<svg id=\"{0}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{1}\" height=\"{2}\" "
      "viewBox=\"0 0 {1} {2}\" role=\"img\" aria-label=\"{3}\">\n",
      id, kChartWidth, height, Esc(title));
}

std::string NoData(const std::string& id, const std::string& title) {
  return OpenSvg(id, 60, title) +
         "<text class=\"nodata\" x=\"12\" y=\"34\">no data</text>\n</svg>\n";
}

// A "nice" axis maximum at or above v: 1, 2 or 5 times a power of ten.
double NiceMax(double v) {
  if (!(v > 0)) return 1;
  const double p = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

// Horizontal grid lines and y labels from 0 to y_max.
std::string YAxis(double y_max, int height, const std::function<std::string(double)>& label) {
  std::string out;
  const double plot_h = height - kTop - kBottom;
  for (int tick = 0; tick <= 4; ++tick) {
    const double v = y_max * tick / 4;
    const double y = kTop + plot_h - plot_h * tick / 4;
    out += fmt::format("<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>", kLeft, Px(y),
                       kChartWidth - kRight, Px(y));
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", kLeft - 6,
                       Px(y + 4), Esc(label(v)));
  }
  out += fmt::format("<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>", kLeft, kTop,
                     Px(kTop + plot_h));
  out += fmt::format("<line class=\"axis\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/>\n", kLeft,
                     Px(kTop + plot_h), kChartWidth - kRight);
  return out;
}

// A line of (x, y) points, x and y from 0.
std::string LineChart(const std::string& id, const std::string& title, const std::vector<double>& xs,
                      const std::vector<double>& ys, const std::string& x_label,
                      const std::function<std::string(double)>& y_label) {
  if (xs.empty()) return NoData(id, title);
  const double x_max = std::max(*std::max_element(xs.begin(), xs.end()), 1e-9);
  const double y_max = NiceMax(*std::max_element(ys.begin(), ys.end()));
  const double plot_w = kChartWidth - kLeft - kRight;
  const double plot_h = kChartHeight - kTop - kBottom;
  std::string out = OpenSvg(id, kChartHeight, title);
  out += YAxis(y_max, kChartHeight, y_label);
  for (int tick = 0; tick <= 4; ++tick) {
    const double x = kLeft + plot_w * tick / 4;
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", Px(x),
                       kChartHeight - kBottom + 16, Esc(Seconds(x_max * tick / 4)));
  }
  out += fmt::format("<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     kLeft + plot_w / 2, kChartHeight - 6, Esc(x_label));
  std::string points;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = kLeft + plot_w * std::max(xs[i], 0.0) / x_max;
    const double y = kTop + plot_h - plot_h * std::clamp(ys[i] / y_max, 0.0, 1.0);
    points += (i == 0 ? "" : " ") + Px(x) + "," + Px(y);
  }
  if (xs.size() == 1) {
    out += fmt::format("<circle class=\"series\" cx=\"{}\" cy=\"{}\" r=\"3\"/>\n", points.substr(0, points.find(',')),
                       points.substr(points.find(',') + 1));
  } else {
    out += "<polyline class=\"series\" points=\"" + points + "\"/>\n";
  }
  return out + "</svg>\n";
}

// Horizontal bars, one per label, with the value printed after each bar.
std::string BarChart(const std::string& id, const std::string& title, const std::vector<std::string>& labels,
                     const std::vector<double>& values, const std::function<std::string(double)>& value_label) {
  if (labels.empty()) return NoData(id, title);
  constexpr int kRow = 26, kLabelW = 170, kValueW = 90;
  const int height = kTop + kRow * static_cast<int>(labels.size()) + 8;
  const double v_max = std::max(*std::max_element(values.begin(), values.end()), 1e-12);
  const double bar_w = kChartWidth - kLabelW - kValueW - kRight;
  std::string out = OpenSvg(id, height, title);
  for (size_t i = 0; i < labels.size(); ++i) {
    const double y = kTop + kRow * static_cast<double>(i);
    const double w = std::max(bar_w * std::max(values[i], 0.0) / v_max, values[i] > 0 ? 1.0 : 0.0);
    std::string label = labels[i];
    if (label.size() > 28) {
      size_t cut = 27;
      while (cut > 0 && (static_cast<unsigned char>(label[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
      label = label.substr(0, cut) + "…";
    }
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\"><title>{}</title>{}</text>",
                       kLabelW - 8, Px(y + 15), Esc(labels[i]), Esc(label));
    out += fmt::format("<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>", kLabelW, Px(y + 3),
                       Px(w), kRow - 8);
    out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\">{}</text>\n", Px(kLabelW + w + 6), Px(y + 15),
                       Esc(value_label(values[i])));
  }
  return out + "</svg>\n";
}

// Vertical bars of `heights` (one per bin, labelled below), and optionally a
// reference drawn as a marker line over each bin.
std::string ColumnChart(const std::string& id, const std::string& title, const std::vector<std::string>& bins,
                        const std::vector<double>& heights, const std::vector<double>* reference,
                        const std::function<std::string(double)>& y_label) {
  if (bins.empty()) return NoData(id, title);
  double top = *std::max_element(heights.begin(), heights.end());
  if (reference != nullptr) top = std::max(top, *std::max_element(reference->begin(), reference->end()));
  const double y_max = NiceMax(top);
  const double plot_w = kChartWidth - kLeft - kRight;
  const double plot_h = kChartHeight - kTop - kBottom;
  const double slot = plot_w / static_cast<double>(bins.size());
  std::string out = OpenSvg(id, kChartHeight, title);
  out += YAxis(y_max, kChartHeight, y_label);
  const size_t label_every = std::max<size_t>(1, (bins.size() + 11) / 12);
  for (size_t i = 0; i < bins.size(); ++i) {
    const double x = kLeft + slot * static_cast<double>(i);
    const double h = plot_h * std::clamp(heights[i] / y_max, 0.0, 1.0);
    out += fmt::format("<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}: {}</title></rect>",
                       Px(x + 1), Px(kTop + plot_h - h), Px(std::max(slot - 2, 1.0)), Px(h), Esc(bins[i]),
                       Esc(y_label(heights[i])));
    if (i % label_every == 0) {
      out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", Px(x + slot / 2),
                         kChartHeight - kBottom + 16, Esc(bins[i]));
    }
    out += "\n";
  }
  if (reference != nullptr) {
    for (size_t i = 0; i < bins.size(); ++i) {
      const double x = kLeft + slot * static_cast<double>(i);
      const double y = kTop + plot_h - plot_h * std::clamp((*reference)[i] / y_max, 0.0, 1.0);
      out += fmt::format("<line class=\"reference\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n", Px(x + 1), Px(y),
                         Px(x + slot - 1), Px(y));
    }
    out += fmt::format(
        "<rect class=\"bar\" x=\"{0}\" y=\"{1}\" width=\"10\" height=\"10\"/><text class=\"tick\" x=\"{2}\" "
        "y=\"{3}\">this run</text><line class=\"reference\" x1=\"{4}\" y1=\"{5}\" x2=\"{6}\" y2=\"{5}\"/><text "
        "class=\"tick\" x=\"{7}\" y=\"{3}\">reference (stats file)</text>\n",
        kChartWidth - 250, kTop, kChartWidth - 236, kTop + 9, kChartWidth - 160, kTop + 5, kChartWidth - 146,
        kChartWidth - 140);
  }
  return out + "</svg>\n";
}

// ---- page sections -------------------------------------------------------------

std::string Section(const std::string& id, const std::string& title, const std::string& body) {
  return fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n{}</section>\n", id, Esc(title), body);
}

std::string Row(const std::vector<std::string>& cells, bool header = false) {
  std::string out = "<tr>";
  for (const std::string& c : cells) out += header ? "<th>" + c + "</th>" : "<td>" + c + "</td>";
  return out + "</tr>\n";
}

std::string SummarySection(const ojson& job, const ojson& totals, const ojson& resources) {
  const int exit_code = static_cast<int>(Int(G(job, "exit_code")));
  std::string kv = "<table class=\"kv\">\n";
  auto add = [&kv](const std::string& k, const std::string& v_html) { kv += Row({Esc(k), v_html}); };
  add("job", Esc(Str(G(job, "name"))));
  add("outcome", fmt::format("<span class=\"{}\">exit {}</span>{}", exit_code == 0 ? "ok" : "bad", exit_code,
                             Str(G(job, "error")).empty() ? "" : " — " + Esc(Str(G(job, "error")))));
  add("started", Esc(Str(G(job, "started"))));
  add("finished", Esc(Str(G(job, "finished"))));
  add("duration", Esc(Seconds(Num(G(job, "seconds")))));
  add("fingerprint", "<code>" + Esc(Str(G(job, "fingerprint"))) + "</code>");
  add("model sha256", "<code>" + Esc(Str(G(job, "model_sha256"))) + "</code>");
  kv += "</table>\n";

  std::string cards = "<div class=\"cards\">\n";
  auto card = [&cards](const std::string& label, const std::string& value) {
    cards += fmt::format("<div class=\"card\"><div class=\"v\">{}</div><div class=\"k\">{}</div></div>\n", Esc(value),
                         Esc(label));
  };
  card("rows in", Grouped(Int(G(totals, "rows_in"))));
  card("rows out", Grouped(Int(G(totals, "rows_out"))));
  card("rejected", Grouped(Int(G(totals, "rows_rejected"))));
  card("filtered", Grouped(Int(G(totals, "rows_filtered"))));
  card("units done", fmt::format("{} / {}", Int(G(totals, "units_done")), Int(G(totals, "units_total"))));
  card("units failed", Grouped(Int(G(totals, "units_failed"))));
  card("parts", Grouped(Int(G(totals, "parts"))));
  card("peak RSS", Bytes(Num(G(resources, "peak_rss_bytes"))));
  card("CPU time", Seconds(Num(G(resources, "cpu_seconds"))));
  card("workers × threads",
       fmt::format("{} × {}", Int(G(resources, "workers")), Int(G(resources, "model_threads"))));
  cards += "</div>\n";
  return Section("summary", "Summary", cards + kv);
}

std::string ThroughputSection(const ojson& throughput) {
  std::vector<double> xs, ys;
  for (const ojson& p : throughput) {
    xs.push_back(Num(G(p, "seconds")));
    ys.push_back(Num(G(p, "rows_per_sec")));
  }
  return Section("throughput", "Throughput over time",
                 LineChart("chart-throughput", "input rows per second over time", xs, ys, "time since start",
                           [](double v) { return Short(v) + "/s"; }));
}

std::string StagesSection(const ojson& stages) {
  std::vector<std::string> labels;
  std::vector<double> values;
  std::string table = "<table>\n" + Row({"stage", "total", "count", "p50", "p90", "p99"}, true);
  for (const auto& [name, st] : stages.items()) {
    labels.push_back(name);
    values.push_back(Num(G(st, "seconds")));
    table += Row({Esc(name), Esc(Seconds(Num(G(st, "seconds")))), Grouped(Int(G(st, "count"))),
                  Esc(Seconds(Num(G(st, "p50")))), Esc(Seconds(Num(G(st, "p90")))), Esc(Seconds(Num(G(st, "p99"))))});
  }
  table += "</table>\n";
  bool any = false;
  for (double v : values) any = any || v > 0;
  if (!any) labels.clear();
  return Section("stages", "Time per stage (summed over workers)",
                 BarChart("chart-stages", "seconds per stage", labels, values, Seconds) + table);
}

// The buckets of a histogram from the first to the last non-empty one,
// labelled by their upper bounds.
void Buckets(const ojson& bounds, const ojson& counts, const std::function<std::string(double)>& fmt_bound,
             std::vector<std::string>* labels, std::vector<double>* values) {
  size_t first = counts.size(), last = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (Int(counts[i]) > 0) {
      first = std::min(first, i);
      last = i;
    }
  }
  for (size_t i = first; i < counts.size() && i <= last; ++i) {
    labels->push_back(i < bounds.size() ? "≤" + fmt_bound(Num(bounds[i]))
                                        : ">" + fmt_bound(bounds.empty() ? 0 : Num(bounds.back())));
    values->push_back(Num(counts[i]));
  }
}

std::string LatencySection(const ojson& latency) {
  const ojson& batch = G(latency, "batch");
  std::vector<std::string> labels;
  std::vector<double> values;
  Buckets(G(batch, "bounds"), G(batch, "counts"), Seconds, &labels, &values);
  const std::string stats = fmt::format("<p>p50 {} · p90 {} · p99 {}</p>\n", Esc(Seconds(Num(G(batch, "p50")))),
                                        Esc(Seconds(Num(G(batch, "p90")))), Esc(Seconds(Num(G(batch, "p99")))));
  return Section("latency", "Batch latency (read to write)",
                 ColumnChart("chart-latency", "batches by latency", labels, values, nullptr, Short) + stats);
}

std::string PredictionsSection(const ojson& p) {
  if (p.is_null()) {
    return Section("predictions", "Predictions", NoData("chart-predictions", "prediction histogram"));
  }
  const ojson& bounds = G(p, "bounds");
  const ojson& counts = G(p, "counts");
  const double total = std::max<double>(1, static_cast<double>(Int(G(p, "count"))));
  std::vector<std::string> labels;
  std::vector<double> fractions;
  for (size_t i = 0; i < counts.size(); ++i) {
    labels.push_back(i < bounds.size() ? "≤" + Short(Num(bounds[i]))
                                       : ">" + Short(bounds.empty() ? 0 : Num(bounds.back())));
    fractions.push_back(Num(counts[i]) / total);
  }
  std::optional<std::vector<double>> reference;
  if (G(p, "reference").is_array() && G(p, "reference").size() == counts.size()) {
    reference.emplace();
    for (const ojson& f : G(p, "reference")) reference->push_back(Num(f));
  }
  if (Int(G(p, "count")) == 0) labels.clear();
  std::string stats = fmt::format("<p>column <code>{}</code> · {} predictions · mean {}", Esc(Str(G(p, "column"))),
                                  Grouped(Int(G(p, "count"))), G(p, "mean").is_number() ? Short(Num(G(p, "mean"))) : "–");
  if (G(p, "psi").is_number()) stats += fmt::format(" · PSI against the reference {:.4f}", Num(G(p, "psi")));
  stats += "</p>\n";
  return Section("predictions", "Predictions",
                 ColumnChart("chart-predictions", "share of predictions per bin", labels, fractions,
                             reference ? &*reference : nullptr,
                             [](double v) { return fmt::format("{:.3g}%", v * 100); }) +
                     stats);
}

std::string RejectsSection(const ojson& rejects) {
  std::vector<std::pair<std::string, double>> by_reason;
  for (const auto& [reason, n] : G(rejects, "by_reason").items()) by_reason.emplace_back(reason, Num(n));
  std::stable_sort(by_reason.begin(), by_reason.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> labels;
  std::vector<double> values;
  for (const auto& [reason, n] : by_reason) {
    labels.push_back(reason);
    values.push_back(n);
  }
  return Section("rejects", "Rejected rows by reason",
                 BarChart("chart-rejects", "rejected rows by reason", labels, values,
                          [](double v) { return Grouped(static_cast<int64_t>(v)); }));
}

std::string AlertsSection(const ojson& alerts) {
  if (alerts.empty()) return Section("alerts", "Alerts", "<p>No alert fired.</p>\n");
  std::string table = "<table>\n" + Row({"at", "rule", "condition", "value", "action", "delivery"}, true);
  for (const ojson& a : alerts) {
    table += Row({Esc(Seconds(Num(G(a, "at_seconds")))), Esc(Str(G(a, "name"))), Esc(Str(G(a, "condition"))),
                  Esc(fmt::format("{:.6g}", Num(G(a, "value")))), Esc(Str(G(a, "action"))), Esc(Str(G(a, "delivery")))});
  }
  return Section("alerts", "Alerts", table + "</table>\n");
}

std::string UnitsSection(const ojson& units) {
  if (units.empty()) return Section("units", "Units", "<p>No unit committed.</p>\n");
  std::string table =
      "<table>\n" + Row({"unit", "input", "rows in", "rows out", "rejected", "filtered", "files", "seconds"}, true);
  for (const ojson& u : units) {
    table += Row({Esc(Str(G(u, "id"))), Esc(Str(G(u, "input"))), Grouped(Int(G(u, "rows_in"))), Grouped(Int(G(u, "rows_out"))),
                  Grouped(Int(G(u, "rows_rejected"))), Grouped(Int(G(u, "rows_filtered"))),
                  std::to_string(G(u, "files").is_array() ? G(u, "files").size() : 0),
                  G(u, "seconds").is_number() ? Esc(Seconds(Num(G(u, "seconds")))) : "earlier run"});
  }
  return Section("units", "Units", table + "</table>\n");
}

constexpr const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;background:#fff;margin:0 auto;max-width:1000px;padding:16px 24px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d9dee3;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #eceff2;text-align:left;vertical-align:top}
th{background:#f4f6f8;font-weight:600}table.kv td:first-child{color:#52606d}code{font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}.card{border:1px solid #d9dee3;border-radius:6px;padding:6px 12px;min-width:110px}
.card .v{font-size:18px;font-weight:600}.card .k{color:#52606d;font-size:12px}.ok{color:#1b7f3b;font-weight:600}.bad{color:#b42318;font-weight:600}
svg.chart{display:block;margin:4px 0;background:#fff}svg .grid{stroke:#eceff2}svg .axis{stroke:#9aa5b1}
svg .tick,svg .label,svg .nodata{font-size:11px;fill:#52606d}svg .series{fill:none;stroke:#2563eb;stroke-width:2}
svg circle.series{fill:#2563eb}svg .bar{fill:#60a5fa}svg .reference{stroke:#d97706;stroke-width:3}
footer{color:#7b8794;font-size:12px;margin:32px 0 8px}
)";

Status Expect(const ojson& report, const char* key, bool (ojson::*is)() const noexcept, const char* what) {
  if (!report.contains(key) || !(report[key].*is)()) {
    return Status::Corruption(fmt::format("not a Sluice run report: '{}' is missing or not {}", key, what));
  }
  return Status::OK();
}

}  // namespace

Result<std::string> RenderReportHtml(const nlohmann::ordered_json& report) {
  if (!report.is_object() || !report.contains("sluice_report") || G(report, "sluice_report") != 1) {
    return Status::Corruption("not a Sluice run report: 'sluice_report' is missing or not 1");
  }
  for (const char* key : {"job", "totals", "stages", "latency", "rejects", "resources"}) {
    RETURN_IF_ERROR(Expect(report, key, &ojson::is_object, "an object"));
  }
  for (const char* key : {"units", "throughput", "alerts"}) {
    RETURN_IF_ERROR(Expect(report, key, &ojson::is_array, "an array"));
  }
  if (!report.contains("predictions") || !(G(report, "predictions").is_object() || G(report, "predictions").is_null())) {
    return Status::Corruption("not a Sluice run report: 'predictions' is missing or not an object or null");
  }
  // A report.json edited by hand may hold values of the wrong type deep
  // inside; nlohmann::json throws on those.
  try {
    const ojson& job = G(report, "job");
    std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    html += "<title>Sluice run report — " + Esc(Str(G(job, "name"))) + "</title>\n";
    html += std::string("<style>") + kStyle + "</style>\n</head>\n<body>\n";
    html += "<h1>Sluice run report: " + Esc(Str(G(job, "name"))) + "</h1>\n";
    html += SummarySection(job, G(report, "totals"), G(report, "resources"));
    html += ThroughputSection(G(report, "throughput"));
    html += StagesSection(G(report, "stages"));
    html += LatencySection(G(report, "latency"));
    html += PredictionsSection(G(report, "predictions"));
    html += RejectsSection(G(report, "rejects"));
    html += AlertsSection(G(report, "alerts"));
    html += UnitsSection(G(report, "units"));
    html += "<footer>Rendered from report.json by Sluice; <code>sluice report OUT_DIR</code> renders it again."
            "</footer>\n</body>\n</html>\n";
    return html;
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("not a Sluice run report: ") + e.what());
  }
}

std::string JobName(const JobSpec& spec) { return BaseName(spec.output.path); }

std::string ReportBaseName(int shard_index, int shard_count) {
  if (shard_count <= 1) return "report";
  return fmt::format("report-shard-{}-of-{}", shard_index, shard_count);
}

Status WriteReport(Env* env, const std::string& out, const std::string& base, const nlohmann::ordered_json& report) {
  ASSIGN_OR_RETURN(std::string html, RenderReportHtml(report));
  const std::string dir = SluiceDir(out);
  RETURN_IF_ERROR(env->CreateDirs(dir));
  // Paths and reject reasons come from the input and may not be UTF-8: replaced, never thrown on.
  RETURN_IF_ERROR(WriteFileAtomic(env, JoinPath(dir, base + ".json"),
                                  report.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n"));
  return WriteFileAtomic(env, JoinPath(dir, base + ".html"), html);
}

Result<std::vector<std::string>> RerenderReports(Env* env, const std::string& out) {
  const std::string dir = SluiceDir(out);
  std::vector<std::string> names;
  if (env->FileExists(dir)) {
    ASSIGN_OR_RETURN(names, env->GetChildren(dir));
  }
  std::vector<std::string> bases;
  for (const std::string& name : names) {
    constexpr std::string_view kExt = ".json";
    if (name.rfind("report", 0) != 0 || name.size() <= kExt.size() ||
        name.compare(name.size() - kExt.size(), kExt.size(), kExt) != 0 || name.find(".tmp-") != std::string::npos) {
      continue;
    }
    const std::string base = name.substr(0, name.size() - kExt.size());
    if (base == "report" || base.rfind("report-shard-", 0) == 0) bases.push_back(base);
  }
  if (bases.empty()) return Status::NotFound(fmt::format("no run report in '{}' (sluice run writes report.json there)", dir));
  std::sort(bases.begin(), bases.end());
  std::vector<std::string> written;
  for (const std::string& base : bases) {
    const std::string json_path = JoinPath(dir, base + ".json");
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(env, json_path));
    const ojson report = ojson::parse(text, nullptr, /*allow_exceptions=*/false);
    if (report.is_discarded()) return Status::Corruption(fmt::format("{}: invalid JSON", json_path));
    Result<std::string> html = RenderReportHtml(report);
    if (!html.ok()) return html.status().WithContext(json_path);
    const std::string html_path = JoinPath(dir, base + ".html");
    RETURN_IF_ERROR(WriteFileAtomic(env, html_path, *html));
    written.push_back(html_path);
  }
  return written;
}

}  // namespace sluice
