/* mt-vi-en page behaviour: vanilla JS, no build step. The page works without it;
 * this adds the pair highlighting, keyboard navigation between rows, a character
 * counter and a busy state on submit. */
(function () {
  "use strict";

  // -- aligned view: hovering or focusing either side highlights the pair --------------------
  var aligned = document.querySelector(".aligned");
  if (aligned) {
    var active = null;

    var activate = function (row) {
      if (row === active) {
        return;
      }
      if (active) {
        active.classList.remove("is-active");
        active.querySelectorAll(".cell").forEach(function (cell) {
          cell.classList.remove("is-active");
        });
      }
      active = row;
      if (row) {
        row.classList.add("is-active");
        row.querySelectorAll(".cell").forEach(function (cell) {
          cell.classList.add("is-active");
        });
      }
    };

    var rowOf = function (node) {
      return node && node.closest ? node.closest(".pair") : null;
    };

    aligned.addEventListener("mouseover", function (event) {
      var row = rowOf(event.target);
      if (row) {
        activate(row);
      }
    });
    aligned.addEventListener("mouseleave", function () {
      // back to the focused row, if any, when the pointer leaves the table
      activate(rowOf(aligned.contains(document.activeElement) ? document.activeElement : null));
    });
    aligned.addEventListener("focusin", function (event) {
      activate(rowOf(event.target));
    });
    aligned.addEventListener("focusout", function (event) {
      if (!aligned.contains(event.relatedTarget)) {
        activate(null);
      }
    });

    // ↑/↓ (and j/k) move between rows, Home/End jump to the first/last row
    aligned.addEventListener("keydown", function (event) {
      var row = rowOf(event.target);
      if (!row || event.altKey || event.ctrlKey || event.metaKey) {
        return;
      }
      var rows = Array.prototype.slice.call(aligned.querySelectorAll(".pair"));
      var index = rows.indexOf(row);
      var next = null;
      if (event.key === "ArrowDown" || event.key === "j") {
        next = rows[index + 1];
      } else if (event.key === "ArrowUp" || event.key === "k") {
        next = rows[index - 1];
      } else if (event.key === "Home") {
        next = rows[0];
      } else if (event.key === "End") {
        next = rows[rows.length - 1];
      }
      if (next) {
        event.preventDefault();
        next.focus();
      }
    });
  }

  // -- the form --------------------------------------------------------------------------------
  var form = document.getElementById("translate-form");
  if (!form) {
    return;
  }
  var text = document.getElementById("text");
  var counter = document.getElementById("char-count");
  var file = document.getElementById("file");
  var submit = document.getElementById("submit");
  var max = counter ? parseInt(counter.getAttribute("data-max"), 10) : 0;
  var format = function (n) {
    return n.toLocaleString("en-US");
  };

  var count = function () {
    if (!counter || !text) {
      return;
    }
    // the server counts code points, as Python's len() does
    var n = Array.from(text.value.replace(/\r\n/g, "\n")).length;
    counter.textContent = format(n) + " / " + format(max) + " characters";
    counter.classList.toggle("char-count-over", n > max);
  };
  if (text) {
    text.addEventListener("input", count);
    if (text.value) {
      count();
    }
  }

  if (file) {
    file.addEventListener("change", function () {
      var chosen = file.files && file.files[0];
      var hint = document.getElementById("file-hint");
      if (hint) {
        hint.textContent = chosen
          ? "“" + chosen.name + "” will be translated instead of the text box."
          : "UTF-8 text; a chosen file replaces the text box.";
      }
    });
  }

  form.addEventListener("submit", function () {
    if (submit) {
      // after the browser has read the form: a disabled button is not submitted, which is fine
      window.setTimeout(function () {
        submit.disabled = true;
        submit.classList.add("is-busy");
        submit.textContent = "Translating…";
      }, 0);
    }
  });

  // coming back with the browser's back button restores a page with a busy button
  window.addEventListener("pageshow", function () {
    if (submit && submit.classList.contains("is-busy")) {
      submit.disabled = false;
      submit.classList.remove("is-busy");
      submit.textContent = "Translate";
    }
  });
})();
