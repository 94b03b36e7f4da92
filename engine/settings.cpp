#include "engine/settings.h"

namespace ffr {

Settings& settings() {
  thread_local Settings s;
  return s;
}

}  // namespace ffr
