(function () {
  var boxes = Array.prototype.slice.call(document.querySelectorAll('#filters input[name=verdict]'));
  var area = document.getElementById('area-filter');
  var status = document.getElementById('filter-status');
  function parseHash() {
    var state = {verdicts: [], area: ''};
    var hash = decodeURIComponent(location.hash.replace(/^#/, ''));
    if (hash.indexOf('=') < 0) { return null; }
    hash.split('&').forEach(function (part) {
      var kv = part.split('=');
      if (kv[0] === 'verdict' && kv[1]) { state.verdicts = kv[1].split(','); }
      if (kv[0] === 'area' && kv[1]) { state.area = kv[1]; }
    });
    return state;
  }
  function apply(state) {
    boxes.forEach(function (box) { box.checked = state.verdicts.indexOf(box.value) >= 0; });
    area.value = state.area;
    var checks = document.querySelectorAll('article.check');
    var rows = document.querySelectorAll('tr.req');
    var shownChecks = 0, shownRows = 0;
    function verdictOk(list) {
      return state.verdicts.length === 0 || list.some(function (v) { return state.verdicts.indexOf(v) >= 0; });
    }
    Array.prototype.forEach.call(checks, function (el) {
      var ok = verdictOk([el.dataset.verdict]) && (!state.area || el.dataset.area === state.area);
      el.hidden = !ok; if (ok) { shownChecks++; }
    });
    Array.prototype.forEach.call(rows, function (el) {
      var ok = verdictOk(el.dataset.verdicts.split(' ')) && (!state.area || el.dataset.area === state.area);
      el.hidden = !ok; if (ok) { shownRows++; }
    });
    var filtered = state.verdicts.length > 0 || state.area;
    status.textContent = 'Showing ' + shownChecks + ' of ' + checks.length + ' checks and ' + shownRows + ' of ' +
      rows.length + ' requirements' + (filtered ? ' (filtered)' : '');
  }
  function current() {
    return {verdicts: boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; }),
            area: area.value};
  }
  function changed() {
    var state = current(), parts = [];
    if (state.verdicts.length) { parts.push('verdict=' + state.verdicts.join(',')); }
    if (state.area) { parts.push('area=' + encodeURIComponent(state.area)); }
    history.replaceState(null, '', parts.length ? '#' + parts.join('&') : location.pathname + location.search);
    apply(state);
  }
  boxes.forEach(function (box) { box.addEventListener('change', changed); });
  area.addEventListener('change', changed);
  document.getElementById('filter-reset').addEventListener('click', function () {
    boxes.forEach(function (b) { b.checked = false; }); area.value = ''; changed();
  });
  window.addEventListener('hashchange', function () { var s = parseHash(); if (s) { apply(s); } });
  document.getElementById('filters').hidden = false;
  apply(parseHash() || {verdicts: [], area: ''});
})();
