# pandoc_man.cmake — builds one gzipped man page from a Markdown doc (run by
# `cmake -P` at build time, see deploy/CMakeLists.txt). The doc's first line,
# its `# Title`, is dropped: the page's title comes from the metadata and its
# NAME/SYNOPSIS/DESCRIPTION from HEAD. Its `##` sections become `.SH`.
#
#   cmake -DPANDOC=... -DHEAD=x.md -DDOC=docs/x.md -DNAME=walrev -DSECTION=1
#         -DVERSION=0.1.0 -DOUT=walrev.1.gz -P pandoc_man.cmake
foreach(v PANDOC HEAD DOC NAME SECTION VERSION OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "pandoc_man.cmake: ${v} is not set")
  endif()
endforeach()
file(READ "${HEAD}" head)
file(READ "${DOC}" doc)
string(REGEX REPLACE "^# [^\n]*\n" "" doc "${doc}")
get_filename_component(dir "${OUT}" DIRECTORY)
set(md "${dir}/${NAME}.${SECTION}.md")
set(man "${dir}/${NAME}.${SECTION}")
file(WRITE "${md}" "${head}${doc}")
string(TOUPPER "${NAME}" title)
execute_process(
  COMMAND "${PANDOC}" --standalone --from=gfm --to=man --shift-heading-level-by=-1
          --metadata=title:${title} --metadata=section:${SECTION}
          --metadata=header:walrev --metadata=footer:walrev\ ${VERSION}
          --output=${man} ${md}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pandoc failed on ${DOC} (exit ${rc})")
endif()
# -n: no name or timestamp in the header, so the package is reproducible.
execute_process(COMMAND gzip -9nf "${man}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip failed on ${man}")
endif()
