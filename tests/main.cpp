// The Catch2 main (compiled once). Tests live in tests/test_*.cpp; tools/run-tests.sh turns Catch2's
// totals into the "P passed, F failed" line.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
