#pragma once
// The SDK is built with hidden visibility; LLM_API marks what it exports. Interfaces are exported so
// their vtables and typeinfo exist once, and dynamic_cast / catch work across plugin boundaries.
#define LLM_API __attribute__((visibility("default")))
