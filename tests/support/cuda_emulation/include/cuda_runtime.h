#pragma once
// The emulated CUDA (../cuda_emulation.hpp) in place of the toolkit's header of this name.
#include "../cuda_emulation.hpp"
