// reST inline markup to plain text (roles, literals, references, emphasis) over one paragraph, which may span lines.
#pragma once

#include <string>
#include <string_view>

namespace gdn2::data_detail {

// :role:`text` -> text (with role-specific touches: :func: adds "()", :pep: prefixes "PEP "), ``x`` -> x,
// `title <url>`_ -> title, **b** -> b, *e* -> e, backslash escapes resolved. Anything unmatched stays as it is.
std::string rst_inline(std::string_view line);

}  // namespace gdn2::data_detail
