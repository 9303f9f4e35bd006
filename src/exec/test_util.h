// Helpers shared by the exec unit tests (not part of the engine).
#pragma once

#include <stdlib.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

// A new directory /tmp/<prefix>XXXXXX; empty when it cannot be made.
inline std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "XXXXXX";
  return ::mkdtemp(tmpl.data()) == nullptr ? "" : tmpl;
}

// A small scoring job's files in `dir`: data.csv (id, x1, x2) of `rows` rows,
// every 31st with an unparsable x2 "bad", and model.json, a logistic model
// 0.1 + 0.5 * x1 - 1.25 * x2 over features x1, x2. Returns the (x1, x2) of
// the rows with a number in x2.
inline std::vector<std::pair<double, double>> WriteLinearJobFiles(const std::string& dir, int rows) {
  std::vector<std::pair<double, double>> readable;
  std::ofstream data(dir + "/data.csv");
  data << "id,x1,x2\n";
  for (int i = 0; i < rows; ++i) {
    const double x1 = (i % 97) * 0.25;
    const int x2 = (i % 13) - 6;
    data << i << "," << x1 << ",";
    if (i % 31 == 0) {
      data << "bad";
    } else {
      data << x2;
      readable.emplace_back(x1, x2);
    }
    data << "\n";
  }
  std::ofstream(dir + "/model.json")
      << R"({"sluice_linear": 1, "feature_names": ["x1", "x2"], "coefficients": [[0.5, -1.25]],)"
      << R"( "intercepts": [0.1], "link": "logistic"})";
  return readable;
}

}  // namespace sluice
