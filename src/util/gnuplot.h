// Runs gnuplot on a script file with arguments (gnuplot -c SCRIPT ARG1 ...), without a shell: paths and
// titles reach gnuplot as strings (ARG1 ...), never as program text. Read by tools that draw PNGs.
#pragma once
#include <string>
#include <vector>

namespace qat {

// "" when gnuplot ran the script and exited 0; else one line saying why not (gnuplot missing, failed).
// Give paths absolute (std::filesystem::absolute): gnuplot runs a file name starting with '|' or '<' as
// a command.
std::string run_gnuplot(const std::string& script, const std::vector<std::string>& args);

}  // namespace qat
